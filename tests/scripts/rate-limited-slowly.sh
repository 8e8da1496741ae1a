#!/bin/sh
# Answers like a provider asking for a long wait before the next call.
# $1: a file that gets one line per call.
echo call >> "$1"
echo '{"error":{"message":"Rate limit reached. Please try again in 30s.","type":"requests","code":"rate_limit_exceeded"}}'
exit 22
