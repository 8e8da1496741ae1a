//! How a PowerShell loop is bounded and what its give-up says: the caps
//! and deadlines that leave it, the clauses and statements that leave or
//! speak, and the messages that count as a diagnostic.

use std::collections::HashSet;

use super::*;

impl<'a> Script<'a> {
    /// Looks for a deadline or iteration cap that leaves loop `position`;
    /// `None` when the file's work budget is spent.
    pub(super) fn find_guard(&self, position: usize) -> Option<BodyGuard> {
        let (open, close) = self.loops[position].body;
        let from = self.guard_parts.partition_point(|&index| index <= open);
        let to = self.guard_parts.partition_point(|&index| index < close);
        if !self.budget.spend(to.saturating_sub(from)) {
            return None;
        }
        let body: Vec<usize> = self.guard_parts[from..to.max(from)]
            .iter()
            .copied()
            .filter(|&index| !self.in_nested_function(index, position))
            .collect();
        let mut counters = self.counters(&body, position)?;
        counters.extend(self.stepped_in_header(position, &body));
        let mut result = BodyGuard {
            guard: Guard::None,
            breaks_only: true,
            other_exit: false,
            other_break: false,
            counters,
            blocks: Vec::new(),
            guard_speaks: false,
        };
        for &index in &body {
            if self.word(index) != Some("if") {
                continue;
            }
            let clauses = self.if_clauses(index);
            let guarded = clauses.iter().any(|clause| {
                clause
                    .0
                    .is_some_and(|condition| self.is_guard_condition(condition, &result.counters))
            });
            if !guarded {
                continue;
            }
            let first_condition = clauses.first().and_then(|clause| clause.0);
            for clause in &clauses {
                let exit = self.block_exit(clause.1, position)?;
                if exit.leaves {
                    result.blocks.push(clause.1);
                    result.breaks_only &= !exit.ends;
                }
                // Only a clause the give-up pass runs reports the give-up.
                let runs_at_the_cap = match (clause.0, first_condition) {
                    (Some(condition), _) => self.true_at_the_cap(condition, &body) != Some(false),
                    (None, Some(first)) => self.true_at_the_cap(first, &body) != Some(true),
                    (None, None) => true,
                };
                result.guard_speaks |= exit.speaks && runs_at_the_cap;
                result.guard = result.guard.max(exit.guard());
            }
        }
        if result.guard == Guard::None {
            result.breaks_only = false;
        }
        if !self.budget.spend(close.saturating_sub(open)) {
            return None;
        }
        for index in open + 1..close.min(self.tokens.len()) {
            if self.in_nested_function(index, position)
                || result
                    .blocks
                    .iter()
                    .any(|&(block_open, block_close)| block_open < index && index < block_close)
            {
                continue;
            }
            if let Some(is_break) = self.leaving(index, position) {
                result.other_exit = true;
                // A `break` whose block says why is a loud give-up, not a quiet success.
                let loud = is_break
                    && self.enclosing[index]
                        .filter(|&open| self.kind(open) == Some(Kind::Open('{')))
                        .and_then(|open| self.pairs[open].map(|close| (open, close)))
                        .and_then(|block| self.span_exit(block, position))
                        .is_some_and(|exit| exit.speaks);
                result.other_break |= is_break && !loud;
            }
        }
        Some(result)
    }

    /// The values (from `=` to the end of the statement) last assigned, before the
    /// loop, to script blocks its condition runs (`until ($done.Invoke())`,
    /// `while (-not (& $ready))`): a deadline may be kept there.
    pub(super) fn invoked_script_blocks(&self, condition: (usize, usize)) -> Vec<(usize, usize)> {
        let invoked: Vec<&str> = self
            .inside(condition)
            .into_iter()
            .filter(|&index| self.kind(index) == Some(Kind::Variable))
            .filter(|&index| {
                let called = self
                    .tokens
                    .get(index + 1)
                    .is_some_and(|dot| dot.text == ".")
                    && self.word(index + 2) == Some("invoke");
                let run = index
                    .checked_sub(1)
                    .is_some_and(|before| self.tokens[before].text == "&");
                called || run
            })
            .map(|index| self.tokens[index].text.as_str())
            .collect();
        let mut blocks = Vec::new();
        for name in invoked {
            let before = self
                .guard_parts
                .partition_point(|&index| index < condition.0);
            let assigned = self.guard_parts[..before].iter().rev().find(|&&index| {
                self.kind(index) == Some(Kind::Variable)
                    && self.tokens[index].text == name
                    && self
                        .tokens
                        .get(index + 1)
                        .is_some_and(|next| next.text == "=")
            });
            let Some(&variable) = assigned else {
                continue;
            };
            let equals = variable + 1;
            let end = (equals + 1..condition.0)
                .find(|&index| {
                    matches!(self.tokens[index].kind, Kind::Newline | Kind::Semicolon)
                        && self.enclosing[index] == self.enclosing[equals]
                })
                .unwrap_or(condition.0);
            if self.budget.spend(end.saturating_sub(equals)) {
                blocks.push((equals, end));
            }
        }
        blocks
    }

    /// Whether a single comparison of a counter or a clock with a bound
    /// (`$n -ge 10`, `$tries -lt $max`, `(Get-Date) -gt $deadline`) holds once the
    /// counter or clock has run to its bound: `None` for any other condition.
    pub(super) fn true_at_the_cap(
        &self,
        condition: (usize, usize),
        body: &[usize],
    ) -> Option<bool> {
        let tokens = self.inside(condition);
        let comparisons: Vec<(usize, &str)> = tokens
            .iter()
            .enumerate()
            .filter_map(|(at, &index)| {
                let word = self.word(index)?;
                let operator = word.strip_prefix('-')?;
                let operator = if operator.len() == 3 {
                    operator.trim_start_matches(['c', 'i'])
                } else {
                    operator
                };
                matches!(
                    operator,
                    "gt" | "ge" | "lt" | "le" | "eq" | "ne" | "and" | "or" | "not" | "xor"
                )
                .then_some((at, operator))
            })
            .collect();
        let [(at, operator)] = comparisons.as_slice() else {
            return None;
        };
        if tokens.iter().any(|&index| self.tokens[index].text == "!") {
            return None;
        }
        let quantity = |indices: &[usize]| -> Option<bool> {
            // Some(true): rises toward its bound; Some(false): falls.
            indices.iter().find_map(|&index| {
                if self.is_clock(index) {
                    return Some(true);
                }
                let name = (self.kind(index) == Some(Kind::Variable))
                    .then(|| self.tokens[index].text.as_str())?;
                let steps: Vec<&str> = body
                    .iter()
                    .filter(|&&part| self.tokens[part].text == name)
                    .filter_map(|&part| {
                        let after = self.tokens.get(part + 1).map(|token| token.text.as_str());
                        let before = part
                            .checked_sub(1)
                            .map(|before| self.tokens[before].text.as_str());
                        [after, before]
                            .into_iter()
                            .flatten()
                            .find(|text| matches!(*text, "++" | "--" | "+=" | "-="))
                    })
                    .collect();
                if steps.is_empty() {
                    return None;
                }
                let falls = steps.iter().all(|step| matches!(*step, "--" | "-="));
                let rises = steps.iter().all(|step| matches!(*step, "++" | "+="));
                (falls || rises).then_some(rises)
            })
        };
        let (left, right) = tokens.split_at(*at);
        let right = &right[1..];
        // `(Get-Date) -lt $deadline`: the clock read now is what runs to the bound.
        let reads_now =
            |indices: &[usize]| indices.iter().any(|&index| self.is_time_reference(index));
        let (rises, flipped) = match (reads_now(left), reads_now(right)) {
            (true, false) => (true, false),
            (false, true) => (true, true),
            _ => match (quantity(left), quantity(right)) {
                (Some(rises), None) => (rises, false),
                (None, Some(rises)) => (rises, true),
                _ => return None,
            },
        };
        // With the quantity on the left: does the comparison hold once it is past its bound?
        let high = match (*operator, flipped) {
            ("gt" | "ge" | "eq", false) | ("lt" | "le" | "eq", true) => true,
            ("lt" | "le" | "ne", false) | ("gt" | "ge" | "ne", true) => false,
            _ => return None,
        };
        Some(high == rises)
    }

    /// `(condition, block)` of each clause of the `if` at `index`.
    #[allow(clippy::type_complexity)]
    pub(super) fn if_clauses(&self, index: usize) -> Vec<(Option<(usize, usize)>, (usize, usize))> {
        let mut clauses = Vec::new();
        let mut keyword = index;
        // Each clause moves past a closing brace, so this ends within the token count.
        for _ in 0..self.tokens.len() {
            let condition = match self.word(keyword) {
                Some("if" | "elseif") => match self.bracket_after(keyword, '(') {
                    Some(condition) => Some(condition),
                    None => break,
                },
                Some("else") => None,
                _ => break,
            };
            let Some(block) =
                self.bracket_after(condition.map_or(keyword, |(_, close)| close), '{')
            else {
                break;
            };
            clauses.push((condition, block));
            match self.next_significant(block.1) {
                Some(next) if next > block.1 => keyword = next,
                _ => break,
            }
            if !matches!(self.word(keyword), Some("elseif" | "else")) {
                break;
            }
        }
        clauses
    }

    pub(super) fn is_time_reference(&self, index: usize) -> bool {
        let token = &self.tokens[index];
        let previous = index
            .checked_sub(1)
            .map(|previous| self.tokens[previous].text.as_str());
        let member = token.text.split('.').next().unwrap_or_default();
        token.kind == Kind::Word
            && (token.text == "get-date"
                || (previous == Some("::")
                    && matches!(member, "now" | "utcnow" | "tickcount" | "tickcount64"))
                || (previous == Some(".") && member.starts_with("elapsed")))
    }

    /// A clock read, or a variable that holds a time.
    pub(super) fn is_clock(&self, index: usize) -> bool {
        self.is_time_reference(index)
            || (self.kind(index) == Some(Kind::Variable)
                && self.clocks.contains(&self.tokens[index].text))
    }

    pub(super) fn is_guard_condition(
        &self,
        condition: (usize, usize),
        counters: &HashSet<String>,
    ) -> bool {
        let tokens = self.inside(condition);
        let compares = tokens.iter().any(|&index| {
            self.word(index).is_some_and(|word| {
                let operator = word.trim_start_matches('-');
                let operator = if operator.len() == 3 {
                    operator.trim_start_matches(['c', 'i'])
                } else {
                    operator
                };
                word.starts_with('-') && matches!(operator, "gt" | "ge" | "lt" | "le" | "eq" | "ne")
            })
        });
        compares
            && tokens.iter().any(|&index| {
                self.is_clock(index)
                    || (self.kind(index) == Some(Kind::Variable)
                        && counters.contains(&self.tokens[index].text))
            })
    }

    /// Variables stepped up or down (`$n++`, `$n += 1`, `$n = $n + 1`) on every
    /// path through the body of loop `position`, and never reset to a number in it.
    pub(super) fn counters(&self, body: &[usize], position: usize) -> Option<HashSet<String>> {
        let mut counters = HashSet::new();
        let mut reset = HashSet::new();
        for &index in body {
            let token = &self.tokens[index];
            let next = self.tokens.get(index + 1);
            let operator = |token: Option<&Token>, texts: &[&str]| {
                token.is_some_and(|token| {
                    token.kind == Kind::Operator && texts.contains(&token.text.as_str())
                })
            };
            if token.kind != Kind::Variable {
                continue;
            }
            let stepped = operator(next, &["++", "--", "+=", "-="])
                || (index > 0 && operator(self.tokens.get(index - 1), &["++", "--"]))
                || (operator(next, &["="])
                    && self.tokens.get(index + 2).is_some_and(|same| {
                        same.kind == Kind::Variable && same.text == token.text
                    })
                    && operator(self.tokens.get(index + 3), &["+", "-"]));
            if stepped && self.on_every_path(index, position)? {
                counters.insert(token.text.clone());
            }
            let set_to_number = operator(next, &["="])
                && self.kind(index + 2) == Some(Kind::Number)
                && self.tokens.get(index + 3).is_none_or(|after| {
                    matches!(after.kind, Kind::Newline | Kind::Semicolon | Kind::Close(_))
                });
            if set_to_number {
                reset.insert(token.text.clone());
            }
        }
        Some(counters.difference(&reset).cloned().collect())
    }

    /// Variables stepped in the parentheses of loop `position` itself, which runs
    /// once a pass: the step clause of `for ($n = 1; $n -le 5; $n++)` or the
    /// `$n++ -lt 5` of a `while` condition; not when the body sets them back to a number.
    pub(super) fn stepped_in_header(&self, position: usize, body: &[usize]) -> HashSet<String> {
        let Some(condition) = self.loops[position].condition else {
            return HashSet::new();
        };
        if self.loops[position].shape == LoopShape::Foreach {
            return HashSet::new();
        }
        let operator = |index: usize, texts: &[&str]| {
            self.tokens.get(index).is_some_and(|token| {
                token.kind == Kind::Operator && texts.contains(&token.text.as_str())
            })
        };
        let stepped: HashSet<String> = self
            .inside(condition)
            .into_iter()
            .filter(|&index| {
                self.kind(index) == Some(Kind::Variable)
                    && (operator(index + 1, &["++", "--", "+=", "-="])
                        || (index > 0 && operator(index - 1, &["++", "--"])))
            })
            .map(|index| self.tokens[index].text.clone())
            .collect();
        let reset: HashSet<&str> = body
            .iter()
            .filter(|&&index| {
                operator(index + 1, &["="]) && self.kind(index + 2) == Some(Kind::Number)
            })
            .map(|&index| self.tokens[index].text.as_str())
            .collect();
        stepped
            .into_iter()
            .filter(|name| !reset.contains(name.as_str()))
            .collect()
    }

    /// Whether the token at `index` runs on every pass through loop `position`:
    /// only `try` / `catch` / `finally` blocks and plain parentheses lie between
    /// it and the body; `None` when the budget is spent.
    pub(super) fn on_every_path(&self, index: usize, position: usize) -> Option<bool> {
        let body_open = self.loops[position].body.0;
        let mut current = self.enclosing.get(index).copied().flatten();
        while let Some(open) = current {
            if open == body_open {
                return Some(true);
            }
            if !self.budget.spend(1) {
                return None;
            }
            let transparent = match self.tokens[open].kind {
                Kind::Open('(') => !self.loop_conditions.contains(&open),
                Kind::Open('{') => {
                    matches!(
                        self.keyword_before(open).as_deref(),
                        Some("try" | "catch" | "finally")
                    ) || self.only_clause_that_stays(open, position)?
                }
                _ => true,
            };
            if !transparent {
                return Some(false);
            }
            current = self.enclosing[open];
        }
        Some(false)
    }

    /// Whether every pass of loop `position` that fails says so before the loop's
    /// own cap is checked: a message after the last way out of the body, on every
    /// path that reaches it (or in a `catch`, where the try failed), so the last
    /// failing pass reports the give-up (`if ($ok) { return $r }` /
    /// `Write-Host "try $i failed"`). A banner before the way out says nothing of
    /// the outcome and does not count. `None` when the budget is spent.
    pub(super) fn speaks_on_failing_pass(&self, position: usize) -> Option<bool> {
        let (open, close) = self.loops[position].body;
        let close = close.min(self.tokens.len());
        if !self.budget.spend(close.saturating_sub(open)) {
            return None;
        }
        let mut last_exit = None;
        for index in open + 1..close {
            if !self.in_nested_function(index, position) && self.leaving(index, position).is_some()
            {
                last_exit = Some(index);
            }
        }
        let from = last_exit.map_or(open + 1, |index| index + 1);
        let mut reports = false;
        for index in from..close {
            if self.in_nested_function(index, position) || !self.at_command_position(index) {
                continue;
            }
            let in_catch = self.in_catch(index, position);
            if last_exit.is_none() && !in_catch {
                continue;
            }
            if !(in_catch || self.on_every_path(index, position)?) {
                continue;
            }
            let end = (index..close)
                .find(|&end| {
                    matches!(
                        self.tokens[end].kind,
                        Kind::Newline | Kind::Semicolon | Kind::Close('}') | Kind::Open('{')
                    )
                })
                .unwrap_or(close);
            if self.span_exit((index - 1, end), position)?.speaks {
                // The last word said before going round again is what the last pass says.
                let said = slice(
                    self.chars,
                    self.tokens[index].start,
                    self.tokens[end.min(self.tokens.len() - 1)].start,
                );
                reports = !promises_another_try(&said);
            }
        }
        Some(reports)
    }

    /// Whether the brace at `open` is a clause of an `if … else` whose every other
    /// clause leaves loop `position` (`if ($failed) { $tries++ } else { break }`):
    /// every pass that goes round again runs that clause. `None` when the budget is spent.
    pub(super) fn only_clause_that_stays(&self, open: usize, position: usize) -> Option<bool> {
        let Some(head) = self.clause_head(open) else {
            return Some(false);
        };
        let clauses = self.if_clauses(head);
        let has_else = clauses.last().is_some_and(|clause| clause.0.is_none());
        if let [(Some(test), (block_open, _))] = clauses.as_slice() {
            // `if (-not $found) { $tries++ }` under `while ((-not $found) -and $tries -lt 5)`:
            // a pass that skips the clause fails the loop's own condition and ends it.
            return Some(*block_open == open && self.is_continuation_conjunct(*test, position));
        }
        if !has_else || !clauses.iter().any(|clause| clause.1 .0 == open) {
            return Some(false);
        }
        for &(_, (block_open, block_close)) in &clauses {
            if block_open == open {
                continue;
            }
            if !self.budget.spend(block_close.saturating_sub(block_open)) {
                return None;
            }
            if !self.always_leaves((block_open, block_close), position, 3) {
                return Some(false);
            }
        }
        Some(true)
    }

    /// Whether the test of an `if` (between the parentheses `test`) is, as written, one
    /// of the `-and` parts of the condition loop `position` needs to go round again
    /// (a `while` or `do … while`).
    pub(super) fn is_continuation_conjunct(&self, test: (usize, usize), position: usize) -> bool {
        let candidate = &self.loops[position];
        let Some(condition) = candidate.condition else {
            return false;
        };
        if !matches!(candidate.shape, LoopShape::While | LoopShape::DoWhile) {
            return false;
        }
        let strip = |mut part: &[usize]| {
            // Each round drops a pair of parentheses, so it ends within the part's length.
            while let [first, .., last] = part {
                if self.kind(*first) == Some(Kind::Open('(')) && self.pairs[*first] == Some(*last) {
                    part = &part[1..part.len() - 1];
                } else {
                    break;
                }
            }
            part.iter()
                .map(|&index| self.tokens[index].text.as_str())
                .collect::<Vec<&str>>()
        };
        let tested = strip(&self.inside(test));
        if tested.is_empty() {
            return false;
        }
        let inside = self.inside(condition);
        inside
            .split(|&index| {
                self.enclosing[index] == Some(condition.0) && self.word(index) == Some("-and")
            })
            .any(|part| strip(part) == tested)
    }

    /// Whether every path through a clause block leaves loop `position` (or sets the
    /// flag its condition tests): a way out at the block's own level, or an inner
    /// `if … else` whose every clause does, followed `depth` levels down.
    pub(super) fn always_leaves(
        &self,
        (open, close): (usize, usize),
        position: usize,
        depth: usize,
    ) -> bool {
        (open + 1..close.min(self.tokens.len())).any(|index| {
            if self.enclosing[index] != Some(open) {
                return false;
            }
            if self.leaving(index, position).is_some() || self.sets_condition_flag(index, position)
            {
                return true;
            }
            if depth == 0 || self.word(index) != Some("if") || !self.at_command_position(index) {
                return false;
            }
            let clauses = self.if_clauses(index);
            clauses.last().is_some_and(|clause| clause.0.is_none())
                && clauses
                    .iter()
                    .all(|clause| self.always_leaves(clause.1, position, depth - 1))
        })
    }

    /// Whether token `index` sets a flag that loop `position`'s own condition tests
    /// (`$assigned = $true` under `while ($attempts -le 100 -and -not $assigned)`):
    /// the pass that runs it is the last.
    pub(super) fn sets_condition_flag(&self, index: usize, position: usize) -> bool {
        let Some(condition) = self.loops[position].condition else {
            return false;
        };
        let token = &self.tokens[index];
        let constant = |offset: usize| {
            self.tokens.get(index + offset).is_some_and(|value| {
                value.kind == Kind::Variable && matches!(value.text.as_str(), "true" | "false")
            })
        };
        token.kind == Kind::Variable
            && self
                .tokens
                .get(index + 1)
                .is_some_and(|next| next.kind == Kind::Operator && next.text == "=")
            && constant(2)
            && self.inside(condition).iter().any(|&tested| {
                self.kind(tested) == Some(Kind::Variable) && self.tokens[tested].text == token.text
            })
    }

    /// The `if` that starts the chain whose clause block opens at `open`.
    pub(super) fn clause_head(&self, open: usize) -> Option<usize> {
        let mut block = open;
        // Each step moves to an earlier clause, so this ends within the token count.
        for _ in 0..self.tokens.len() {
            let mut cursor = block.checked_sub(1)?;
            while self.kind(cursor) == Some(Kind::Newline) {
                cursor = cursor.checked_sub(1)?;
            }
            let keyword = if self.word(cursor) == Some("else") {
                cursor
            } else if self.kind(cursor) == Some(Kind::Close(')')) {
                let condition_open = self.pairs[cursor]?;
                let mut before = condition_open.checked_sub(1)?;
                while self.kind(before) == Some(Kind::Newline) {
                    before = before.checked_sub(1)?;
                }
                before
            } else {
                return None;
            };
            match self.word(keyword)? {
                "if" => return Some(keyword),
                "elseif" | "else" => {
                    let mut previous = keyword.checked_sub(1)?;
                    while self.kind(previous) == Some(Kind::Newline) {
                        previous = previous.checked_sub(1)?;
                    }
                    if self.kind(previous) != Some(Kind::Close('}')) {
                        return None;
                    }
                    block = self.pairs[previous]?;
                }
                _ => return None,
            }
        }
        None
    }

    /// The word before the brace at `open`, skipping a `[Type]` (as in `catch [Exception] {`).
    pub(super) fn keyword_before(&self, open: usize) -> Option<String> {
        let mut cursor = open.checked_sub(1)?;
        while self.kind(cursor) == Some(Kind::Newline) {
            cursor = cursor.checked_sub(1)?;
        }
        if self.kind(cursor) == Some(Kind::Close(']')) {
            cursor = self.pairs[cursor]?.checked_sub(1)?;
            while self.kind(cursor) == Some(Kind::Newline) {
                cursor = cursor.checked_sub(1)?;
            }
        }
        self.word(cursor).map(str::to_string)
    }

    /// Whether the token at `index` lies in a `catch` block inside loop `position`.
    pub(super) fn in_catch(&self, index: usize, position: usize) -> bool {
        let body_open = self.loops[position].body.0;
        let mut current = self.enclosing.get(index).copied().flatten();
        while let Some(open) = current.filter(|&open| open > body_open) {
            if !self.budget.spend(1) {
                return false;
            }
            if self.kind(open) == Some(Kind::Open('{'))
                && self.keyword_before(open).as_deref() == Some("catch")
            {
                return true;
            }
            current = self.enclosing[open];
        }
        false
    }

    /// Whether the token at `index` is a statement that leaves loop `position`,
    /// and whether that is a `break`; `None` when it is not.
    pub(super) fn leaving(&self, index: usize, position: usize) -> Option<bool> {
        let word = self.word(index)?;
        if !self.at_command_position(index) {
            return None;
        }
        let label = self.loops[position].label.as_deref();
        let argument = self.argument(index);
        match word {
            "break" => {
                let targets_this_loop = argument
                    .is_some_and(|target| Some(target.text.trim_start_matches(':')) == label);
                let inner = !self.loops_around(index, Some(position)).is_empty();
                (targets_this_loop || !inner).then_some(true)
            }
            "return" => {
                // In a script block `return` only ends the current pipeline item.
                let in_script_block = self
                    .loops_around(index, Some(position))
                    .iter()
                    .any(|&inner| self.loops[inner].shape == LoopShape::Pipeline);
                (!in_script_block && self.loops[position].shape != LoopShape::Pipeline)
                    .then_some(false)
            }
            "exit" | "throw" => Some(false),
            "write-error" if self.stops_on_error(index) => Some(false),
            _ if is_exception_helper(word) => Some(false),
            _ => self
                .helpers
                .get(word)
                .is_some_and(|&(leaves, _)| leaves)
                .then_some(false),
        }
    }

    /// The token after a command word, when it is an argument.
    pub(super) fn argument(&self, index: usize) -> Option<&Token> {
        self.tokens.get(index + 1).filter(|next| {
            !matches!(
                next.kind,
                Kind::Newline | Kind::Semicolon | Kind::Close(_) | Kind::Pipe
            )
        })
    }

    /// Whether a clause block leaves loop `position`, and whether it says why.
    pub(super) fn block_exit(&self, block: (usize, usize), position: usize) -> Option<Exit> {
        self.span_exit(block, position)
    }

    /// What the tokens strictly between `open` and `close` do to loop `position`.
    pub(super) fn span_exit(&self, (open, close): (usize, usize), position: usize) -> Option<Exit> {
        let mut exit = Exit::default();
        if !self.budget.spend(close.saturating_sub(open)) {
            return None;
        }
        for index in open + 1..close.min(self.tokens.len()) {
            if self.in_nested_function(index, position) {
                continue;
            }
            let Some(word) = self.word(index) else {
                continue;
            };
            let leaving = self.leaving(index, position);
            exit.leaves |= leaving.is_some();
            exit.ends |= leaving == Some(false);
            if !self.at_command_position(index) {
                if matches!(word, "writeline" | "writeerrorline") {
                    exit.speaks = true;
                }
                continue;
            }
            match word {
                "throw" => {
                    // A bare `throw` in `catch` passes on the error, message and all.
                    exit.speaks |= self.argument(index).is_some() || self.in_catch(index, position);
                }
                // `Should` (Pester) fails the test with a message when its check fails.
                "write-error" | "echo" | "write" | "should" => exit.speaks = true,
                _ if self.quiet_switch(index, close) => {
                    // `Write-Log "attempt $n failed" -Verbose` shows only when asked for.
                }
                _ => {
                    let writes = word.starts_with("write-")
                        && !matches!(word, "write-verbose" | "write-debug" | "write-progress");
                    let logs = word.starts_with("log-") || word.ends_with("-log");
                    // `Fail-Json $result 'timed out'` (Ansible modules) reports and ends the run.
                    let fails = word.starts_with("fail-") && self.argument(index).is_some();
                    let helper_speaks = self.helpers.get(word).is_some_and(|&(_, speaks)| speaks);
                    // `New-InvalidOperationException @params` raises what it is handed.
                    let raises = is_exception_helper(word) && self.argument(index).is_some();
                    // `Set-ExitCode -ErrorMessage '…'`: a command handed the message to report.
                    let hands_a_message = (index + 1..close.min(self.tokens.len()))
                        .take_while(|&argument| {
                            !matches!(
                                self.tokens[argument].kind,
                                Kind::Newline | Kind::Semicolon | Kind::Pipe | Kind::Close('}')
                            )
                        })
                        .any(|argument| {
                            self.word(argument).is_some_and(|parameter| {
                                parameter.starts_with('-') && parameter.ends_with("message")
                            })
                        });
                    exit.speaks |=
                        writes || logs || fails || helper_speaks || hands_a_message || raises;
                }
            }
        }
        Some(exit)
    }

    /// Whether the command at `index` (its statement ending before `close`) passes
    /// `-Verbose` or `-Debug` (not `-Verbose:$false`): what it writes shows only
    /// when the caller asks for it.
    pub(super) fn quiet_switch(&self, index: usize, close: usize) -> bool {
        (index + 1..close.min(self.tokens.len()))
            .take_while(|&argument| {
                !matches!(
                    self.tokens[argument].kind,
                    Kind::Newline | Kind::Semicolon | Kind::Pipe | Kind::Close('}')
                )
            })
            .any(|argument| {
                matches!(self.word(argument), Some("-verbose" | "-debug"))
                    && self
                        .tokens
                        .get(argument + 1)
                        .is_none_or(|next| next.text != ":")
            })
    }

    /// Variables assigned from a clock among `parts`, directly or through another such variable.
    pub(super) fn clock_variables(&self, parts: &[usize]) -> HashSet<String> {
        let assignments: Vec<(String, Vec<usize>)> = parts
            .iter()
            .filter(|&&index| {
                self.kind(index) == Some(Kind::Variable)
                    && self
                        .tokens
                        .get(index + 1)
                        .is_some_and(|next| next.kind == Kind::Operator && next.text == "=")
            })
            .map(|&index| {
                let value = (index + 2..self.tokens.len())
                    .take_while(|&cursor| {
                        !matches!(
                            self.tokens[cursor].kind,
                            Kind::Newline | Kind::Semicolon | Kind::Close('}')
                        )
                    })
                    .collect();
                (self.tokens[index].text.clone(), value)
            })
            .collect();
        let mut clocks = HashSet::new();
        for _ in 0..=assignments.len() {
            let before = clocks.len();
            for (name, value) in &assignments {
                if !self.budget.spend(value.len()) {
                    return clocks;
                }
                if !clocks.contains(name)
                    && value.iter().any(|&index| {
                        self.is_time_reference(index)
                            || (self.kind(index) == Some(Kind::Variable)
                                && clocks.contains(&self.tokens[index].text))
                    })
                {
                    clocks.insert(name.clone());
                }
            }
            if clocks.len() == before {
                break;
            }
        }
        clocks
    }

    /// Whether the `Write-Error` at `index` throws: it has `-ErrorAction Stop`,
    /// or the script set `$ErrorActionPreference = 'Stop'` before it.
    pub(super) fn stops_on_error(&self, index: usize) -> bool {
        let preference_stops = self.stop_preference.is_some_and(|setting| setting < index);
        if preference_stops {
            return true;
        }
        let mut cursor = index + 1;
        while let Some(token) = self.tokens.get(cursor) {
            if matches!(
                token.kind,
                Kind::Newline | Kind::Semicolon | Kind::Pipe | Kind::Close(_)
            ) {
                return false;
            }
            if matches!(token.text.as_str(), "-erroraction" | "-ea")
                && self.word(cursor + 1) == Some("stop")
            {
                return true;
            }
            cursor += 1;
        }
        false
    }
}
