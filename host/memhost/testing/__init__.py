"""Test tooling shipped with memhost, not used by a run: the fault-injecting serial link (faults) and
the fuzz corpus of `memhost bench fuzz` (fuzz_corpus). Benches and tests import it; commands do not."""
