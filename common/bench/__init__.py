"""Side by side: ``crossframe compare`` (train on several backends, compare the runs) and
``crossframe bench`` (time epochs against the classic tutorial pipeline and Keras 3).

Every run is its own Python process (``python -m crossframe.common.bench.worker JOB``), so
one framework's thread pools, allocator and compiled code never sit beside another's, a
crash or a missing framework is one row of the table, and peak memory is per run.
Importing this package imports no framework.
"""
