#!/bin/sh
# Answers like a provider that rate-limits every call.
echo '{"error":{"message":"Rate limit reached. Please try again in 20ms.","type":"requests","code":"rate_limit_exceeded"}}'
exit 22
