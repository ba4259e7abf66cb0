"""The EmoVid dataset (emovid_core.dataset, with the executor it indexes on): table, filters, sampling, index, pick."""
