#!/usr/bin/env bash
# The sign-off's two gates, failing closed. release.yml feeds them what the
# GitHub API says; check-delivery.sh feeds them broken records to show they bite.
#
#   signoff.sh rules ENVIRONMENT_JSON
#       GET /repos/{owner}/{repo}/environments/production. Fails unless the
#       environment requires reviewers (at least one) and prevents self-review.
#       Warns when admins may bypass the rules (docs/RELEASE.md says how that shows).
#   signoff.sh approval APPROVALS_JSON ACTOR
#       GET /repos/{owner}/{repo}/actions/runs/{run}/approvals. Fails unless
#       someone other than ACTOR (who started the release) approved the
#       production environment; prints the approvers for the release notes.
set -euo pipefail

fail() {
	echo "::error::sign-off: $*" >&2
	exit 1
}

case ${1:-} in
rules)
	[ $# -eq 2 ] || fail "usage: signoff.sh rules ENVIRONMENT_JSON"
	env_json=$2
	reviewers=$(jq '[.protection_rules[]? | select(.type == "required_reviewers") | .reviewers[]?] | length' "$env_json") ||
		fail "cannot read the environment's protection rules from $env_json"
	[ "$reviewers" -gt 0 ] ||
		fail "the production environment has no required reviewers: nobody would have to sign off (Settings → Environments → production)"
	jq -e '[.protection_rules[]? | select(.type == "required_reviewers")][0].prevent_self_review == true' "$env_json" >/dev/null ||
		fail "the production environment lets the person who starts a release approve it: turn on 'Prevent self-review'"
	if jq -e '.can_admins_bypass != false' "$env_json" >/dev/null; then
		echo "::warning::sign-off: repository admins can bypass production's protection rules; a bypass shows in the run's log and the deployment's history (docs/RELEASE.md)"
	fi
	echo "sign-off rules: $reviewers required reviewer(s), self-review prevented"
	;;
approval)
	[ $# -eq 3 ] || fail "usage: signoff.sh approval APPROVALS_JSON ACTOR"
	approvals_json=$2 actor=$3
	approvers=$(jq -r '[.[] | select(.state == "approved" and any(.environments[]?; .name == "production")) | .user.login] | unique | join(" ")' "$approvals_json") ||
		fail "cannot read the run's approvals from $approvals_json"
	[ -n "$approvers" ] || fail "no approval of the production environment is recorded for this run: nothing was signed off"
	others=()
	for a in $approvers; do
		[ "$a" = "$actor" ] || others+=("$a")
	done
	[ ${#others[@]} -gt 0 ] || fail "production was approved only by @$actor, who started this release: self-approval is no sign-off"
	printf 'signed off by:'
	printf ' @%s' "${others[@]}"
	printf '\n'
	;;
*)
	fail "usage: signoff.sh rules ENVIRONMENT_JSON | signoff.sh approval APPROVALS_JSON ACTOR"
	;;
esac
