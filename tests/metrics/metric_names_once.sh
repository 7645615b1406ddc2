#!/bin/sh
# Every metric is declared once (README "Design", issue "one declaration per
# metric"): each Prometheus name in metrics/metric_table.h appears in no
# other file under metrics/ (code, comments and all: elsewhere a row is
# named by its field). Run from the source root; prints each offender.
set -eu
table=metrics/metric_table.h
names=$(grep -oE '"(flux|process)_[a-z0-9_]+"' "$table" | tr -d '"' | sort -u)
count=$(printf '%s\n' "$names" | grep -c .)
if [ "$count" -lt 40 ]; then
  echo "only $count metric names found in $table: is the table where this script looks?"
  exit 1
fi
bad=0
for name in $names; do
  files=$(grep -rlw -- "$name" metrics/)
  if [ "$files" != "$table" ]; then
    echo "$name is in: $(echo $files)"
    bad=$((bad + 1))
  fi
done
echo "$count metric names, $bad not in exactly one file under metrics/"
[ "$bad" -eq 0 ]
