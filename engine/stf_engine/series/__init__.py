"""Daily series: a fused image and a reliability map for every coarse date, from masked references."""
