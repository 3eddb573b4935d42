"""Where generators come from and how they are described: shipped default weights and their card, training run folders."""
