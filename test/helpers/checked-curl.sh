# Sourced before each README example by test/e2e/readme-examples.test.ts: curl as the README uses
# it, that also fails on an HTTP error, and on an answer that says it is JSON but is not.
curl() {
  local out status type body
  out=$(command curl -sS -w '\n%{http_code} %{content_type}' "$@") || return $?
  body=${out%$'\n'*}
  status=${out##*$'\n'}
  type=${status#* }
  status=${status%% *}
  printf '%s\n' "$body"
  case $status in 2??) ;; *) echo "curl $*: HTTP $status" >&2; return 22 ;; esac
  case $type in
    *json*) node -e 'JSON.parse(require("fs").readFileSync(0, "utf8"))' <<<"$body" || { echo "curl $*: not JSON" >&2; return 1; } ;;
  esac
}
