"""Firestore access. Each module here owns the paths of one family of collections;
nothing outside shared/store builds a document path."""
