# The probe crate's own live tests (events, every program, every object and
# attach mode), run on this kernel.
cd /tmp && /bin/live --include-ignored --test-threads=1 $SAKER_ARG 2>&1
