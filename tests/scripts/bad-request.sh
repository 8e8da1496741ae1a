#!/bin/sh
# Answers like a provider refusing a malformed request: HTTP 400, which the
# provider still counts against the requests-per-minute limit.
echo '{"error":{"message":"Invalid value for messages: expected an array.","type":"invalid_request_error","param":"messages","code":"invalid_value"}}'
echo 'curl: (22) The requested URL returned error: 400' >&2
exit 22
