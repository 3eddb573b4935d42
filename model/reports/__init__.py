"""What people look at: scores against tricubic, figures and previews saved as PNG."""
