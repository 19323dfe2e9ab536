"""The experiments of ``python -m benchmarks``, by name, with one line each.

Each module here defines ``add_arguments(parser)`` (its ``run`` options),
``run(args)`` and ``summarize(args)`` (tables from the results in
``args.out``), and may define ``add_summary_arguments(parser)``. ``args``
also holds the shared ``threads``, ``seed`` and ``out``.
"""

EXPERIMENTS = {
    "speed": "the VAE's training and scoring against a hand-written torch loop",
    "latency": "scoring time of one row and of many against the raw forward pass",
    "memory": "peak memory of scoring a memmap as it grows",
    "scaling": "time and memory of the default detector from 6k to 200k rows",
    "image_folder": "loading a folder of image files through the memmap cache",
    "architecture": "one-class ROC-AUC against fit seconds of widths and epochs",
    "thresholds": "do thresholds, p-values and FDR control keep their promises",
    "detection": "runs of python -m skvae.benchmark and their option tables",
    "contamination": "training data with anomalies in it, and tables: the summary",
    "score_parts": "which score part survives anomalies in training images",
    "table_score_parts": "which score suits rows of features, ranked against baselines",
    "knn_cap": "what a cap on the nearest-neighbour index costs in ROC-AUC",
    "scored_copies": "scoring fewer transformed copies: the quality it costs",
    "orientation": "the image default's classifier part: orientation or transformation",
    "detector_settings": "a detector setting on the benchmark's splits, and its cost",
    "bpd_ood": "bits per dimension of Fashion-MNIST against outliers, by latent size",
    "bpd_dai_wipf": "Dai & Wipf (2019) table 1 with the paper's network",
    "grad2vae": "Grad2VAE on one-class Fashion-MNIST: the paper's protocol and cost",
    "dual_vae": "the dual VAE's three experiments (Eichen's thesis, chapter 3)",
    "semi_supervised": "VAEClassifier against semi-supervised baselines",
    "transformer_vs_pca": "VAETransformer against PCA: reconstruction, 5-NN accuracy",
    "fit_cost": "fit seconds of the detector's options against PyOD's VAE",
    "conv_paths": "convolution kernels for a lone row: its bits and their cost",
    "compiled": "torch.compile against eager, and each VAE layer's share of the peak",
    "anomaly_classes": "ROC-AUC per anomaly class: which kinds each method misses",
    "square_tables": "embeddings of a square number of features: table or image",
}
