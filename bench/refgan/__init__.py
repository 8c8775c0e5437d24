"""refgan: a small reference GAN trainer that shares no code with gantune's trainables (see bench/make_corpus.py)."""
