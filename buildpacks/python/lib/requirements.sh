# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# berth Python buildpack: what an app asks to install, sourced
# by bin/compile (which installs them) and bin/berth-offline (which says
# whether there is anything to install, hence to download). The sourcing
# script defines fail MESSAGE... (which must exit non-zero: compile prints
# the lines, the hook only exits 1) and calls these in the app's dir.

# The requirement files a requirements file pulls in (-r/-c), recursively,
# and the local --find-links directories it names, as paths relative to
# BUILD_DIR, into req_inputs: what the cache hash covers besides the file.
# Each file is read once; files that include each other in a loop fail the
# build (pip would follow the loop until Python's stack runs out, and this
# walk for ever). A file is known by its device and inode (bash's -ef, no
# exec: `readlink -f` cost ~7 ms a deploy on a slow host, twice), so a
# path through a link or `..` to a file already read is that file.
req_files=()
req_states=()
req_inputs=()
# Whether a file -ef $1 was walked: status 0 and its index in req_files in
# req_found, else status 1.
req_find() {
    local i
    for i in "${!req_files[@]}"; do
        if [[ "${req_files[$i]}" -ef "$1" ]]; then
            req_found=$i
            return 0
        fi
    done
    return 1
}
req_walk() {
    local file=$1 dir line arg shown at req_found
    local -a words
    if req_find "$file"; then
        case "${req_states[$req_found]}" in
            done) return 0 ;;
            reading)
                shown=${file#./}
                fail "the requirement files include each other in a loop (-r or -c back to $shown): pip cannot install from them" \
                    "remove the -r or -c line that leads back to $shown"
                ;;
        esac
    fi
    at=${#req_files[@]}
    req_files+=("$file")
    req_states+=(reading)
    if [[ "$file" == */* ]]; then dir=${file%/*}; else dir=.; fi
    [[ -n "$dir" ]] || dir=/
    req_inputs+=("$file")
    while IFS= read -r line || [[ -n "$line" ]]; do
        line=${line%%#*}
        read -r -a words <<<"$line" || true
        ((${#words[@]})) || continue
        case "${words[0]}" in
            -r | --requirement | -c | --constraint)
                arg=${words[1]:-}
                if [[ -n "$arg" && -f "$dir/$arg" ]]; then req_walk "$dir/$arg"; fi
                ;;
            -r* | -c*)
                arg=${words[0]:2}
                if [[ -f "$dir/$arg" ]]; then req_walk "$dir/$arg"; fi
                ;;
            --requirement=* | --constraint=*)
                arg=${words[0]#*=}
                if [[ -f "$dir/$arg" ]]; then req_walk "$dir/$arg"; fi
                ;;
            -f | --find-links)
                arg=${words[1]:-}
                [[ "$arg" == file://* ]] && arg=${arg#file://}
                if [[ -n "$arg" && -d "$arg" ]]; then req_inputs+=("$arg"); fi
                if [[ -n "$arg" && "$arg" != /* && -d "$dir/$arg" ]]; then req_inputs+=("$dir/$arg"); fi
                ;;
            --find-links=*)
                arg=${words[0]#*=}
                [[ "$arg" == file://* ]] && arg=${arg#file://}
                if [[ -d "$arg" ]]; then req_inputs+=("$arg"); fi
                if [[ "$arg" != /* && -d "$dir/$arg" ]]; then req_inputs+=("$dir/$arg"); fi
                ;;
        esac
    done <"$file"
    req_states[at]="done"
}

# Whether the requirement files (req_walk's) name anything to install: a
# line that is not blank, a comment or a pip option.
req_nonempty() {
    local f line
    for f in "${req_inputs[@]}"; do
        [[ -f "$f" ]] || continue
        while IFS= read -r line || [[ -n "$line" ]]; do
            [[ "$line" =~ ^[[:space:]]*(#|$|-) ]] || return 0
            [[ "$line" =~ ^[[:space:]]*(-e|--editable)([[:space:]=]|$) ]] && return 0
        done <"$f"
    done
    return 1
}

# Whether a pyproject.toml or setup.py project declares anything to
# install: a pyproject.toml that only configures tools does not.
project_installs() {
    [[ -f setup.py ]] || grep -qE '^[[:space:]]*\[(project|build-system)\]' pyproject.toml
}
