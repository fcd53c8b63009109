"""Fusion methods: the contract (`contract`), STARFM, the baselines, the deep-model adapter and the catalog."""
