# Sourced by the recipes in scripts/: `run CMD...` prints the command, then runs it; with --dry-run
# (or DRY_RUN=1) it only prints, so a recipe can be read, checked and copied before it is run.
DRY_RUN=${DRY_RUN:-0}
for arg in "$@"; do [ "$arg" = "--dry-run" ] && DRY_RUN=1; done
PY=${PYTHON:-python}
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$DRY_RUN" = 1 ] || "$@"
}
