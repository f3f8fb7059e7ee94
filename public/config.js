// Deployment settings of the Operations page. Served as a static file, so a deploy
// edits this one file instead of rebuilding anything (docs/operations-page.md).
//
//   auth: "off"       the API runs with AUTH_MODE=off (make dev, tests): no sign-in.
//   auth: "firebase"  sign in with a Firebase Auth email/password account; the page
//                     sends the ID token as "Authorization: Bearer <token>".
//                     Needs apiKey (the Firebase web API key, which is not a secret).
//                     identityToolkitUrl / secureTokenUrl default to Google's endpoints;
//                     point them at the Firebase Auth emulator to sign in locally, e.g.
//                     "http://127.0.0.1:9099/identitytoolkit.googleapis.com/v1" and
//                     "http://127.0.0.1:9099/securetoken.googleapis.com/v1".
export default {
  auth: "off",
  apiKey: "",
  identityToolkitUrl: "https://identitytoolkit.googleapis.com/v1",
  secureTokenUrl: "https://securetoken.googleapis.com/v1",
};
