#!/usr/bin/env bash
# Fails when git tracks something built: an executable binary (ELF, Mach-O,
# PE, or a Go test binary) anywhere, or any file over 1 MiB that is not
# declared test data below. Scripts with the executable bit are fine: they
# are source. Run by build/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# Large files that are test data on purpose: one path pattern a line.
declared_test_data=(
)

limit=$((1024 * 1024))
bad=0
while IFS= read -r -d '' path; do
	[[ -f "$path" && ! -L "$path" ]] || continue
	magic=$(head -c 4 -- "$path" | od -An -tx1 | tr -d ' \n')
	case "$magic" in
	7f454c46 | cffaedfe | cefaedfe | feedfacf | feedface | 4d5a*)
		echo "check-tree: $path is a built executable (magic $magic): git rm --cached '$path' and list it in .gitignore" >&2
		bad=1
		continue
		;;
	esac
	size=$(stat -c %s -- "$path")
	if ((size > limit)); then
		declared=0
		for pattern in "${declared_test_data[@]}"; do
			# shellcheck disable=SC2053 # pattern match on purpose
			[[ "$path" == $pattern ]] && declared=1
		done
		if ((!declared)); then
			echo "check-tree: $path is $((size / 1024)) KiB (limit 1 MiB): remove it, or declare it as test data in build/check-tree.sh" >&2
			bad=1
		fi
	fi
done < <(git ls-files -z)
if ((bad)); then
	exit 1
fi
echo "check-tree: no built or oversized files tracked"
