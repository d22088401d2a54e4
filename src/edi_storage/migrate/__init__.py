"""Schema versioning at run time: where the revisions are, where a database stands, and how to
upgrade it safely."""
