#!/bin/sh
# Answers like a provider whose credits are gone: HTTP 429, insufficient_quota.
echo '{"error":{"message":"You exceeded your current quota, please check your plan and billing details. Key sk-proj-abcdefghijklmnopqrstuvwxyz123456 was used.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}'
exit 3
