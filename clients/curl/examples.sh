#!/usr/bin/env bash
# gradserve from the command line: a curl example for every endpoint, each checked against the
# answer it must get. Prints one line per example and exits non-zero if any answer differs.
#
#   clients/curl/examples.sh [BASE_URL]     (default $GRADSERVE_URL, else http://127.0.0.1:8000)
set -uo pipefail

BASE_URL=${1:-${GRADSERVE_URL:-http://127.0.0.1:8000}}
JSON='Content-Type: application/json'
failures=0

# check NAME STATUS MODE WANT CURL_ARGS...: run curl, compare the status, and the body either
# exactly (MODE "is") or as containing WANT (MODE "has").
check() {
  local name=$1 want_status=$2 mode=$3 want=$4
  shift 4
  local output status body
  output=$(curl -sS -w '\n%{http_code}' "$@") || { echo "FAIL  $name: curl failed"; failures=$((failures + 1)); return; }
  status=${output##*$'\n'}
  body=${output%$'\n'*}
  if [[ $status == "$want_status" ]] && { [[ $mode == is && $body == "$want" ]] || [[ $mode == has && $body == *"$want"* ]]; }; then
    echo "ok    $name"
  else
    echo "FAIL  $name: expected $want_status $mode ${want:0:200}"
    echo "      got      $status ${body:0:200}"
    failures=$((failures + 1))
  fi
}

WORKED='{"X": [[1, 2], [3, -1]], "Y": [[1], [8]], "W1": [[1, -1, 2], [1, 1, -1]], "W2": [[1], [-1], [1]]}'

check "health" 200 is '{"status":"ok"}' \
  "$BASE_URL/healthz"

check "gradients of the worked example" 200 is \
  '{"loss":2.0,"gradients":{"Y_pred":[[2.0],[2.0]],"W2":[[10.0],[2.0],[14.0]],"H_relu":[[2.0,-2.0,2.0],[2.0,-2.0,2.0]],"H":[[2.0,-2.0,0.0],[2.0,0.0,2.0]],"W1":[[8.0,-2.0,6.0],[2.0,-4.0,-2.0]]},"dtype":"float64","shapes":{"N":2,"D_in":2,"H":3,"D_out":1}}' \
  "$BASE_URL/v1/gradients" -H "$JSON" -d "$WORKED"

check "gradients in float32, with the forward pass" 200 is \
  '{"loss":0.25,"gradients":{"Y_pred":[[-1.0]],"W2":[[-1.5]],"H_relu":[[-2.0]],"H":[[-2.0]],"W1":[[-1.0]]},"forward":{"H":[[1.5]],"H_relu":[[1.5]],"Y_pred":[[3.0]]},"dtype":"float32","shapes":{"N":1,"D_in":1,"H":1,"D_out":1}}' \
  "$BASE_URL/v1/gradients" -H "$JSON" \
  -d '{"X": [[0.5]], "Y": [[3.5]], "W1": [[3]], "W2": [[2]], "options": {"dtype": "float32", "return_forward": true}}'

check "a shape mismatch is a 422 naming the field" 422 is \
  '{"type":"urn:gradserve:problem:invalid-request","title":"Invalid request","status":422,"detail":"X has 2 columns but W1 has 1 row (shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)","errors":[{"pointer":"/W1","detail":"X has 2 columns but W1 has 1 row (shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)"}],"error_count":1}' \
  "$BASE_URL/v1/gradients" -H "$JSON" \
  -d '{"X": [[1, 2], [3, -1]], "Y": [[1], [8]], "W1": [[1, -1, 2]], "W2": [[1], [-1], [1]]}'

check "malformed JSON is a 400" 400 is \
  '{"type":"urn:gradserve:problem:malformed-json","title":"Malformed JSON","status":400,"detail":"The request body is not valid JSON: Invalid JSON: EOF while parsing a list at line 1 column 13"}' \
  "$BASE_URL/v1/gradients" -H "$JSON" -d '{"X": [[1, 2]'

check "a body not sent as JSON is a 415" 415 has '"title":"Unsupported Media Type"' \
  "$BASE_URL/v1/gradients" -d "$WORKED"

check "the OpenAPI document" 200 has '"/v1/gradients":' \
  "$BASE_URL/openapi.json"

check "the documentation page, served offline" 200 has 'swagger-ui-bundle.js' \
  "$BASE_URL/docs"

check "an unknown path is a 404 problem" 404 is \
  '{"type":"about:blank","title":"Not Found","status":404,"detail":"There is no such endpoint; see /docs for the API."}' \
  "$BASE_URL/v1/nothing"

if ((failures)); then
  echo "$failures example(s) failed"
  exit 1
fi
echo "all examples answered as expected"
