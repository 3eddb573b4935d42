"""Declarative training recipes (`soupgan recipe`): pinned public scans, the recipe format, its runner and the
install step that ships a run's generators as the default weights."""
