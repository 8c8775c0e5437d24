"""Search spaces and the remedy ladder, as data; the models they search are in trainables.registry."""
