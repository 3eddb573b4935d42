"""SavedModel export per scale, TF Serving configuration, the gRPC client and whole-volume inference."""
