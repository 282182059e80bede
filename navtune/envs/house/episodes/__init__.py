"""Episode generators over the generated houses: ObjectNav episode files and R2R-format VLN data.

They live with the house simulator because they need its geometry (the GL-free plan in `layout`,
`occupancy`, `navgraph`); what they write are the task formats of `navtune/tasks` (ObjectNav episodes,
R2R connectivity and episode files), so everything downstream reads them like any other data.
"""
