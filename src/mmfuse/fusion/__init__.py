"""Fusion methods: ``{modality: (B, D_m)}`` + masks -> ``(B, D_out)``. Registered in :data:`mmfuse.registry.FUSIONS`.

Feature-level (a head follows; ``out_dim`` is a hidden size):

* ``concat`` - early fusion, ``ReLU(W [z_1; ...; z_M] + b)`` (:mod:`.concat`)
* ``weighted_sum`` - ``sum_m w_m W_m z_m``, ``w = softmax(a)`` over the modalities present (:mod:`.weighted_sum`)
* ``modality_attention`` - additive attention over modalities (Bahdanau et al. 2015; Hori et al. 2017)
(:mod:`.attention`)
* ``self_attention`` - single-stream transformer with a fusion token (Vaswani et al. 2017) (:mod:`.transformer`)
* ``cross_attention`` - cross-modal attention blocks (MulT, Tsai et al. 2019; LXMERT) (:mod:`.transformer`)
* ``gated`` - Gated Multimodal Unit for M modalities (Arevalo et al. 2017) (:mod:`.gated`)
* ``tensor`` - Tensor Fusion Network, outer product of ``[z_m; 1]`` (Zadeh et al. 2017) (:mod:`.tensor`)
* ``low_rank_tensor`` - Low-rank Multimodal Fusion (Liu et al. 2018) (:mod:`.tensor`)
* ``hybrid`` - feature-level branch + weighted decision-level branch (Atrey et al. 2010) (:mod:`.hybrid`)

Decision-level (``decision_level = True``; one predictor per modality, ``out_dim`` = number of outputs):

* ``late_mean``, ``late_weighted``, ``late_vote`` - mean, learned weighted mean and majority vote (median)
  of the per-modality predictions over the modalities present (:mod:`.late`)

Every method ignores the embedding of an absent modality (mask False) and renormalises its weights
over the modalities present; a sample with no modality gets a finite output.
"""
