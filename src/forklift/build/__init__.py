"""The builder: Dockerfile -> OCI image, with a content-addressed layer cache."""
