#!/bin/sh
# Answers like `curl -sS` without --fail-with-body: the first call gets a 429
# body and curl still exits 0; the second succeeds.
# $1: a file that records that the first call happened.
marker="$1"
if [ ! -e "$marker" ]; then
  : > "$marker"
  echo '{"error":{"message":"Rate limit reached for gpt-4o on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 50ms.","type":"requests","code":"rate_limit_exceeded"}}'
  exit 0
fi
echo '{"id":"chatcmpl-2","object":"chat.completion","choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":30,"completion_tokens":5,"total_tokens":35}}'
