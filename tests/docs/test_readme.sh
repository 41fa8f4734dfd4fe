#!/usr/bin/env bash
# README.md keeps its promises: the first code block is exactly the two
# set-up commands (scripts/demo, scripts/test) and both exist; the operations
# guide has a heading for every section of the runbook's table of contents
# and for each procedure under them; the performance section keeps its
# marked table and the bench commands it names exist; troubleshooting covers
# Docker socket permissions, Postgres auth and Redis AUTH; the reference
# table names every page in man/. No sandbox needed.
set -uo pipefail
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
readme=$src/README.md
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

# 1. The two set-up commands come first.
first=$(awk '/^```/{n++; next} n == 1' "$readme" | sed -E 's/[[:space:]]+#.*$//' | grep -v '^[[:space:]]*$')
[[ $first == $'scripts/demo\nscripts/test' ]] ||
	err "the README's first code block is not exactly 'scripts/demo' and 'scripts/test':"$'\n'"$first"
for s in scripts/demo scripts/test; do
	[[ -x $src/$s ]] || err "$s is not an executable script"
done
# Nothing but prose before them.
before=$(awk '/^```/{exit} /^## /{print}' "$readme")
[[ -z $before ]] || err "a section comes before the set-up commands: $before"

# 2. The operations guide follows the runbook's table of contents. The
# runbook (seed text) lives outside the repository; the list is its TOC
# and procedures, kept here so the test runs anywhere.
guide=$(awk '/^## Operations guide$/{on=1; next} on && /^## /{exit} on && /^#/' "$readme")
[[ -n $guide ]] || err "no '## Operations guide' section"
sections=("Deployment Procedures" "Monitoring and Alerts" "Common Issues and Fixes"
	"Rollback Procedures" "Database Operations" "Security Incident Response"
	"Emergency Contacts" "Post-Incident Checklist")
prev=0
for s in "${sections[@]}"; do
	n=$(grep -n -x "### $s" <<<"$guide" | head -1 | cut -d: -f1)
	if [[ -z $n ]]; then
		err "the operations guide has no '### $s'"
	elif ((n < prev)); then
		err "'### $s' is out of the runbook's order"
	else
		prev=$n
	fi
done
procedures=("Pre-Deployment Checklist" "Docker Deployment" "Database Migration Deployment"
	"Zero-Downtime Deployment" "Health Checks" "Log Monitoring" "Performance Metrics"
	"Backup Procedures" "Database Maintenance" "Check Database Size" "Migration Best Practices"
	"Suspected Security Breach" "Investigation" "Mitigation" "Exposed Secrets"
	"Rate Limit Exceeded")
for p in "${procedures[@]}"; do
	grep -q "^#### .*$p" <<<"$guide" || err "the operations guide has no heading for '$p'"
done
# The runbook's rollback and common-issue procedures are rows of tables.
for p in "Quick Rollback" "Git-Based Rollback" "Rollback Last Migration" "Full Database Restore" \
	"Rollback Decision Matrix"; do
	grep -q "$p" "$readme" || err "the README never names the runbook's '$p'"
done
for i in backend-crash frontend-network db-pool redis-oom s3-upload email trending; do
	grep -q "| \`$i\`" "$readme" || err "the common issues table has no row for diagnose '$i'"
done

# 3. Performance: the marked table the lead fills, and the bench commands.
perf=$(awk '/^## Performance$/{on=1; next} on && /^## /{exit} on' "$readme")
grep -q '^<!-- PLACEHOLDER: latest bench ratios' <<<"$perf" || err "Performance: the marked table is gone"
grep -q '^| Procedure |' <<<"$perf" || err "Performance: no table"
for b in bench/health.sh bench/backup.sh bench/deploy.sh; do
	grep -q "^$b\b" <<<"$perf" || err "Performance: no command line for $b"
	[[ -x $src/$b ]] || err "Performance names $b, which is not an executable script"
done

# 4. Troubleshooting.
trouble=$(awk '/^## Troubleshooting$/{on=1; next} on && /^## /{exit} on' "$readme")
for t in 'Docker socket permissions' 'Postgres authentication' 'Redis AUTH'; do
	grep -q "\*\*$t" <<<"$trouble" || err "Troubleshooting has no '$t' entry"
done

# 5. The reference table names every page.
for f in "$src"/man/*.[15]; do
	base=${f##*/}
	name=${base%.*}
	sec=${base##*.}
	grep -qF "\`$name($sec)\`" "$readme" || err "the README's Reference does not name $name($sec)"
done

exit $fail
