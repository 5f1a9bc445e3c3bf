"""The study: the paper's conditions and ablations, run and reported."""
