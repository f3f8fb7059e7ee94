// Where the page finds its sign-in settings. Nothing here changes per deployment:
// Firebase Hosting serves the project's web config at the reserved URL
// /__/firebase/init.json on every site, and the local router serves the same URL
// with the local stack's settings (docs/operations-page.md, "Sign-in").
export default {
  initJsonUrl: "/__/firebase/init.json",
  identityToolkitUrl: "https://identitytoolkit.googleapis.com/v1",
  secureTokenUrl: "https://securetoken.googleapis.com/v1",
};
