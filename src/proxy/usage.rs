//! Reads the usage a provider reports from an answer as it passes through,
//! without holding up or changing a byte of it.
//!
//! A server-sent event stream is read line by line as it flows (OpenAI's
//! `usage` chunk, Anthropic's `message_start` and `message_delta`, Gemini's
//! `usageMetadata` in each chunk); the largest figure seen for each side
//! wins, since streams report running totals. Any other answer is kept up to
//! [`MAX_DOCUMENT_BYTES`] and read as one JSON document at its end.

use crate::rate_limits::usage::{find_usage, TokenUsage};

/// Longest event-stream line read for usage, in bytes; longer lines are skipped.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Longest non-stream answer read for usage, in bytes; past it, no usage is read.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// Follows one answer's bytes and collects its usage.
#[derive(Debug)]
pub struct UsageTracker {
    streaming: bool,
    buffer: Vec<u8>,
    skipping_line: bool,
    too_long: bool,
    found: Option<TokenUsage>,
}

impl UsageTracker {
    /// A tracker for an event stream (`streaming`) or a single document.
    pub fn new(streaming: bool) -> Self {
        Self {
            streaming,
            buffer: Vec::new(),
            skipping_line: false,
            too_long: false,
            found: None,
        }
    }

    /// Reads the next piece of the answer.
    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.streaming {
            if self.buffer.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                self.too_long = true;
                self.buffer = Vec::new();
            }
            if !self.too_long {
                self.buffer.extend_from_slice(chunk);
            }
            return;
        }
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(newline);
            if !self.skipping_line && self.buffer.len() + line.len() <= MAX_LINE_BYTES {
                self.buffer.extend_from_slice(line);
                let line = std::mem::take(&mut self.buffer);
                self.read_line(&line);
                self.buffer = line;
            }
            self.buffer.clear();
            self.skipping_line = false;
            rest = &after[1..];
        }
        if self.skipping_line || self.buffer.len() + rest.len() > MAX_LINE_BYTES {
            self.skipping_line = true;
            self.buffer.clear();
        } else {
            self.buffer.extend_from_slice(rest);
        }
    }

    /// The usage seen so far, reading what is left (the last stream line
    /// without its newline, or the whole document).
    pub fn finish(&mut self) -> Option<TokenUsage> {
        let rest = std::mem::take(&mut self.buffer);
        if !self.too_long && !self.skipping_line {
            self.read_line(&rest);
        }
        self.found
    }

    fn read_line(&mut self, line: &[u8]) {
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        if self.streaming && !text.trim_start().starts_with("data:") {
            return;
        }
        if let Some(usage) = find_usage(text) {
            let total = self.found.get_or_insert_with(TokenUsage::default);
            total.input_tokens = total.input_tokens.max(usage.input_tokens);
            total.output_tokens = total.output_tokens.max(usage.output_tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input_tokens: u64, output_tokens: u64) -> Option<TokenUsage> {
        Some(TokenUsage {
            input_tokens,
            output_tokens,
        })
    }

    /// Feeds `text` in pieces of `size` bytes.
    fn track(streaming: bool, text: &str, size: usize) -> Option<TokenUsage> {
        let mut tracker = UsageTracker::new(streaming);
        text.as_bytes()
            .chunks(size)
            .for_each(|piece| tracker.feed(piece));
        tracker.finish()
    }

    #[test]
    fn reads_each_dialects_stream_split_anywhere() {
        let anthropic = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n";
        let openai = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
        let gemini = "data: {\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":2}}\r\n\r\ndata: {\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":6}}";
        for size in [1, 3, 17, 4096] {
            assert_eq!(track(true, anthropic, size), usage(25, 15), "size {size}");
            assert_eq!(track(true, openai, size), usage(9, 4), "size {size}");
            assert_eq!(track(true, gemini, size), usage(7, 6), "size {size}");
        }
        assert_eq!(track(true, "data: {\"choices\":[]}\n\n", 5), None);
    }

    #[test]
    fn reads_a_document_at_its_end() {
        let body = "{\"id\":\"x\",\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}";
        assert_eq!(track(false, body, 7), usage(12, 3));
        // A Gemini stream without `alt=sse` is one JSON array.
        let array = "[{\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":1}},\n{\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":8}}]";
        assert_eq!(track(false, array, 10), usage(4, 8));
    }

    #[test]
    fn skips_overlong_lines_and_documents() {
        let long = format!(
            "data: {{\"pad\":\"{}\",\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":1}}}}\n",
            "x".repeat(MAX_LINE_BYTES)
        );
        let text =
            format!("{long}data: {{\"usage\":{{\"prompt_tokens\":2,\"completion_tokens\":3}}}}\n");
        assert_eq!(track(true, &text, 65_536), usage(2, 3));
        let mut tracker = UsageTracker::new(false);
        tracker.feed(&vec![b' '; MAX_DOCUMENT_BYTES]);
        tracker.feed(b"{\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}");
        assert_eq!(tracker.finish(), None);
    }
}
