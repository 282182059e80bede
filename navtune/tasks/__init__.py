"""Episode datasets per task: r2r (files in R2R format), objectnav (generic episodes), house generators."""
