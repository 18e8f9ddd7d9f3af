#!/usr/bin/env bash
# The layering rule of DESIGN.md: imports point down. Nothing in the request
# logic (client/src/request/), the connections (client/src/conn/), the errors
# or the modules below them may use the web conveniences (client/src/web/),
# a front end (client.rs, http_request.rs, pool.rs) or what lib.rs
# re-exports from them. Doc comments may link up; code may not.
# Prints each offending line and fails; prints nothing when the rule holds.
set -euo pipefail
cd "$(dirname "$0")/../client/src"
lower=(request conn cache transport error.rs status.rs body.rs time.rs reactor.rs
       resolve.rs connect.rs tls_options.rs)
upward='crate::(web|client|http_request|pool)\b|crate::(HttpClient|HttpRequest|RequestPool|PoolSettings|RequestId|RequestProgress)\b|super::super::web\b'
hits=$(grep -rnE "$upward" "${lower[@]}" | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
if [ -n "$hits" ]; then
    printf '%s\n' "$hits"
    echo "check-layers: the lines above import upward (request/, conn/ and below must not use web/, a front end or the pool)" >&2
    exit 1
fi
