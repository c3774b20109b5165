#!/usr/bin/env python3
"""delta_inproc.py -- commits of a trajectory from one process, one open
repository each (how weightvault.Checkpointer and a training loop commit),
into a repository with delta chunks and one without, in turn. A handle
keeps its last commit's plaintext for the next commit's delta bases
(docs/repo-format.md "Delta chunks"); `wv commit` runs once per process
and reads them back instead (bench_delta.sh measures that).

  WEIGHTVAULT_LIB=build/libweightvault.so PYTHONPATH=python \\
      /usr/bin/python3 bench/delta_inproc.py DELTA_REPO WHOLE_REPO FILE...

Each file is loaded before its two commits (not timed), which take turns
to go first. Prints the summed
commit wall time of each repository and their ratio, the median ratio
over the commits after the second (the first two cannot use the cache),
and the CPU time of the process (all its threads) during the commits.
"""
import statistics
import sys
import time

import weightvault as wv


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    dl, wh, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    td, tw, cd, cw = [], [], 0.0, 0.0
    with wv.Repository(dl) as rd, wv.Repository(wh) as rw:
        for i, f in enumerate(files):
            s = wv.load(f)
            # each repository commits a freshly loaded set first every
            # other file (the first commit of a set runs slower)
            for r, t in ((rd, td), (rw, tw)) if i % 2 == 0 else \
                    ((rw, tw), (rd, td)):
                a, pa = time.perf_counter(), time.process_time()
                r.commit(s)
                b, pb = time.perf_counter(), time.process_time()
                t.append(b - a)
                if r is rd:
                    cd += pb - pa
                else:
                    cw += pb - pa
            del s
    later = [d / w for d, w in zip(td[2:], tw[2:])] or [0.0]
    print("commits of all %d from one process: delta %.2f s, whole %.2f s "
          "(ratio %.2f; median per commit after the second %.2f); CPU "
          "%.2f s, %.2f s (ratio %.2f)"
          % (len(files), sum(td), sum(tw), sum(td) / sum(tw),
             statistics.median(later), cd, cw, cd / cw))


if __name__ == "__main__":
    main()
