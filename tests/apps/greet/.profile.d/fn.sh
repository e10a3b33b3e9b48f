# For tests/run.sh: a shell function that shadows a program; exported, so
# `bash -c` sees it.
nproc() { echo "from-fn $SHLVL"; }
export -f nproc
