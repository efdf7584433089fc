# shellcheck shell=bash
# Kaldi-style option parsing, sourced by a script after it has set its defaults:
#
#   nj=4; cmd=run.pl; use_gpu=false
#   . utils/parse_options.sh
#
# "--some-name value" and "--some-name=value" assign $some_name, but only when the script has
# already defined that variable (so a typo is an error, not a silent new variable).
# "--config FILE" sources FILE, a file of "name=value" shell assignments (same rule applies).
# A variable whose default is "true" or "false" accepts only true/false.
# "--help" / "-h" prints $help_message (or $usage) and exits 0. Parsing stops at the first
# argument that does not start with "--" or at "--"; the remaining arguments stay in "$@".

# The name of the calling script, for messages.
_po_prog=$(basename "${0}")

_po_usage() {
  if [ -n "${help_message:-}" ]; then
    printf '%s\n' "$help_message"
  elif [ -n "${usage:-}" ]; then
    printf '%s\n' "$usage"
  else
    echo "$_po_prog: no usage message defined"
  fi
}

_po_set() {
  # $1: option name as written (with dashes), $2: value
  local name=${1//-/_}
  if [[ ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "$_po_prog: invalid option name --$1" >&2
    exit 1
  fi
  if [ "$name" = config ]; then
    if [ ! -r "$2" ]; then
      echo "$_po_prog: config file '$2' cannot be read" >&2
      exit 1
    fi
    _po_config "$2"
    return
  fi
  # Defined (possibly empty) variables only; ${x+set} distinguishes unset from empty.
  if [ -z "$(eval "echo \${$name+set}")" ]; then
    echo "$_po_prog: unknown option --$1" >&2
    exit 1
  fi
  # A variable whose default is true/false is a boolean: accept only true/false for it.
  local current
  eval "current=\${$name}"
  if { [ "$current" = true ] || [ "$current" = false ]; } && [ "$2" != true ] && [ "$2" != false ]; then
    echo "$_po_prog: option --$1 takes true or false, got '$2'" >&2
    exit 1
  fi
  printf -v "$name" '%s' "$2"
}

_po_config() {
  # Each name assigned in the config file must already be a variable of the script.
  local line name
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    [[ $line =~ ^[[:space:]]*$ ]] && continue
    if [[ ! $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)= ]]; then
      echo "$_po_prog: $1: expected name=value, got: $line" >&2
      exit 1
    fi
    name=${BASH_REMATCH[1]}
    if [ -z "$(eval "echo \${$name+set}")" ]; then
      echo "$_po_prog: $1: unknown option $name" >&2
      exit 1
    fi
  done < "$1"
  # shellcheck disable=SC1090
  . "$1"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      _po_usage
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      _po_opt=${1%%=*}
      _po_set "${_po_opt#--}" "${1#*=}"
      shift
      ;;
    --?*)
      if [ $# -lt 2 ]; then
        echo "$_po_prog: option $1 needs a value" >&2
        exit 1
      fi
      _po_set "${1#--}" "$2"
      shift 2
      ;;
    *)
      break
      ;;
  esac
done
unset _po_opt
true
