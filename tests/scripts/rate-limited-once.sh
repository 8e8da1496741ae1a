#!/bin/sh
# Answers like a provider that rate-limits the first call and then succeeds.
# $1: a file that records that the first call happened.
marker="$1"
if [ ! -e "$marker" ]; then
  : > "$marker"
  echo '{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 50ms.","type":"requests","code":"rate_limit_exceeded"}}'
  echo 'curl: (22) The requested URL returned error: 429' >&2
  exit 22
fi
echo '{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":42,"completion_tokens":7,"total_tokens":49}}'
