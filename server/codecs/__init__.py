"""Wire formats: Paddle Serving tensors, KServe v2, images."""
