#!/usr/bin/env bash
# python_dist.sh -- weightvault.distributed (issue 16) from Python:
# tests/python/test_distributed.py through python.sh (the same library,
# interpreter and sanitizer handling as cli.python). Four writer processes
# (a torch.multiprocessing gloo group; torchrun-style ones with only
# RANK/WORLD_SIZE) save one checkpoint on local disk, and on S3 and RADOS
# when the Ceph test environment is given ($AWS_ENDPOINT_URL, $CEPH_CONF;
# those runs skip without it); readers by 1, 3 and 8; the refusals.
#
# Env: as python.sh.
exec bash "$(dirname "${BASH_SOURCE[0]}")/python.sh" tests/python/test_distributed.py
