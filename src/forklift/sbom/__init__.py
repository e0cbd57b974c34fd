"""Software bill of materials: what is inside an image (analyzers apart from output formats)."""
