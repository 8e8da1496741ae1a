//! Caps and deadlines: counters the body advances on every path, elapsed-time
//! variables, and the tests of either that leave the loop.

use super::{body_size, is_broken_arithmetic, references, Analyzer, FunctionGuard, Guards, Jump};
use crate::validate::loops::shell::syntax::{
    commands_in, commands_of, pipelines_of, AndOr, Command, Connector, List, Loop, LoopKind,
    Pipeline, Simple,
};
use crate::validate::loops::shell::words::{assignment, identifiers, literal};

impl<'t> Analyzer<'t> {
    pub(super) fn time_variables(&self) -> &[&'t str] {
        self.time_variables.get_or_init(|| {
            let mut assignments = Vec::new();
            self.collect_assignments(self.program, &mut assignments);
            let mut variables = Vec::new();
            // A variable derived from a time variable is a time too; rounds
            // cover `start=$(date +%s)`, `deadline=$((start + 60))`.
            for _ in 0..3 {
                let before = variables.len();
                for &(name, value) in &assignments {
                    if !variables.contains(&name) && mentions_time(value, &variables) {
                        variables.push(name);
                    }
                }
                if variables.len() == before {
                    break;
                }
            }
            variables
        })
    }

    /// `counters` and every variable the loop's body assigns: after the loop,
    /// a test of any of them tells the give-up from success
    /// (`if [ "$state" != ready ]; then echo … >&2; exit 1; fi`).
    pub(super) fn with_body_variables(&self, lp: &Loop, counters: &[&'t str]) -> Vec<&'t str> {
        let mut names = counters.to_vec();
        let mut assigned = Vec::new();
        self.collect_assignments(&lp.body, &mut assigned);
        names.extend(assigned.into_iter().map(|(name, _)| name));
        names
    }

    /// A `while true` loop whose only ways out are its counter's tests, each by
    /// `break` (or a successful exit): running out of turns is how it finishes.
    pub(super) fn is_countdown(&self, lp: &Loop, counters: &[&str]) -> bool {
        !counters.is_empty()
            && !self.mentions_time(self.span(lp.header_end, lp.end))
            && !self.has_other_exit(&lp.body, 0, counters)
            && !self.list_fails(&lp.body)
    }

    /// The loop's counters, judged by data flow: names its `for ((…))` step,
    /// its condition, or every path through its body advances, and that
    /// nothing in the body sets back (`n=0`). A counter advanced only on
    /// success, or only by an inner loop, stops nothing.
    pub(super) fn counters(&self, lp: &Loop) -> Vec<&'t str> {
        let mut names = Vec::new();
        if let Some(parts) = lp.arithmetic {
            for (start, end) in [parts[0], parts[2]] {
                arithmetic_updates(self.span(start, end), &mut names);
            }
        }
        self.list_increments(&lp.condition, &mut names);
        self.every_path_increments(&lp.body, &mut names);
        let mut resets = Vec::new();
        self.list_resets(&lp.body, &mut resets);
        self.list_unsteady_steps(&lp.body, &mut resets);
        names.retain(|name| !resets.contains(name));
        names
    }

    /// Names the body moves by a command's status (`errors=$((errors + $?))`,
    /// which adds 0 on success) or moves both up and down: such a tally does
    /// not advance toward its bound on every pass, so it caps nothing.
    pub(super) fn list_unsteady_steps(&self, list: &[AndOr], names: &mut Vec<&'t str>) {
        let mut directions: Vec<(&'t str, bool)> = Vec::new();
        self.for_each_assignment(list, false, &mut |assigned| {
            if assigned.value.contains("$?") {
                names.push(assigned.name);
            } else if let Some(up) = step_direction(assigned.value, assigned.name) {
                directions.push((assigned.name, up));
            }
        });
        for command in commands_of(list) {
            if let Command::Arithmetic(start, end) = command {
                arithmetic_directions(self.span(*start, *end), &mut directions);
            }
        }
        for (name, up) in &directions {
            if directions
                .iter()
                .any(|(other, other_up)| other == name && other_up != up)
            {
                names.push(name);
            }
        }
    }

    /// Adds the names advanced on every path through `list` that stays in
    /// the loop; true when every path through it leaves the loop.
    fn every_path_increments(&self, list: &[AndOr], names: &mut Vec<&'t str>) -> bool {
        for and_or in list {
            let Some(first) = and_or.pipelines.first() else {
                continue;
            };
            let alone = and_or.pipelines.len() == 1;
            if let [command] = first.commands.as_ref() {
                match command {
                    Command::Simple(simple) => {
                        self.simple_increments(simple, names);
                        if alone && self.command_jumps(command, 0, Jump::Leave) {
                            return true;
                        }
                    }
                    Command::Arithmetic(start, end) => {
                        arithmetic_updates(self.span(*start, *end), names)
                    }
                    Command::Group(body) => {
                        if self.every_path_increments(body, names) && alone {
                            return true;
                        }
                    }
                    Command::If(chain) => {
                        if let Some((condition, _)) = chain.branches.first() {
                            self.every_path_increments(condition, names);
                        }
                        let bodies = chain
                            .branches
                            .iter()
                            .map(|(_, body)| Some(body))
                            .chain([chain.otherwise.as_ref()]);
                        if self.common_increments(bodies, names) && alone {
                            return true;
                        }
                    }
                    Command::Case(case) => {
                        let has_default = case.patterns.iter().any(|patterns| {
                            patterns.iter().any(|pattern| {
                                literal(self.raw(pattern)).bytes().all(|byte| byte == b'*')
                            })
                        });
                        let arms = case
                            .arms
                            .iter()
                            .map(Some)
                            .chain((!has_default).then_some(None));
                        if self.common_increments(arms, names) && alone {
                            return true;
                        }
                    }
                    Command::Loop(_) | Command::Function(_) => {}
                }
            }
            // After a `continue`, some turns skip the rest of the body.
            if commands_in(&and_or.pipelines)
                .any(|command| self.command_jumps(command, 0, Jump::Continue))
            {
                return false;
            }
        }
        false
    }

    /// Adds the names every branch that stays in the loop advances (a missing
    /// branch, `None`, advances nothing); true when every branch leaves.
    fn common_increments<'b>(
        &self,
        branches: impl Iterator<Item = Option<&'b List>>,
        names: &mut Vec<&'t str>,
    ) -> bool {
        let mut common: Option<Vec<&'t str>> = None;
        for branch in branches {
            let mut own = Vec::new();
            if let Some(branch) = branch {
                if self.every_path_increments(branch, &mut own) {
                    continue;
                }
            }
            common = Some(match common {
                None => own,
                Some(known) => known
                    .into_iter()
                    .filter(|name| own.contains(name))
                    .collect(),
            });
        }
        match common {
            None => true,
            Some(common) => {
                names.extend(common);
                false
            }
        }
    }

    /// Names the body sets to a value that does not build on their own (`n=0`).
    pub(super) fn list_resets(&self, list: &[AndOr], names: &mut Vec<&'t str>) {
        self.for_each_assignment(list, false, &mut |assigned| {
            let reads_itself = if assigned.arithmetic {
                identifiers(assigned.value).any(|(_, other)| other == assigned.name)
            } else {
                references(assigned.value, assigned.name)
            };
            if !assigned.compound && !reads_itself {
                names.push(assigned.name);
            }
        });
    }

    fn list_increments(&self, list: &[AndOr], names: &mut Vec<&'t str>) {
        for command in commands_of(list) {
            match command {
                Command::Simple(simple) => self.simple_increments(simple, names),
                Command::Arithmetic(start, end) => {
                    arithmetic_updates(self.span(*start, *end), names)
                }
                Command::Loop(lp) => {
                    if let Some(parts) = lp.arithmetic {
                        for (start, end) in [parts[0], parts[2]] {
                            arithmetic_updates(self.span(start, end), names);
                        }
                    }
                    self.list_increments(&lp.condition, names);
                    self.list_increments(&lp.body, names);
                }
                Command::If(_) | Command::Case(_) | Command::Group(_) => {
                    for list in command.branch_lists() {
                        self.list_increments(list, names);
                    }
                }
                Command::Function(_) => {}
            }
        }
    }

    fn simple_increments(&self, simple: &Simple, names: &mut Vec<&'t str>) {
        let index = self.command_index(simple).unwrap_or(simple.words.len());
        let name = self.command_name(simple);
        let declares = matches!(
            name.as_deref(),
            Some("local" | "declare" | "typeset" | "export" | "readonly")
        );
        for (position, word) in simple.words.iter().enumerate() {
            let raw = self.raw(word);
            if position < index || (declares && position > index) {
                if let Some((variable, value)) = assignment(raw) {
                    let appends = raw.as_bytes().get(variable.len()) == Some(&b'+');
                    // `count=$($count+1)` runs a command named `3+1`: it advances nothing.
                    if (appends || references(value, variable)) && !is_broken_arithmetic(value) {
                        names.push(variable);
                    }
                }
            }
            let is_let_argument = name.as_deref() == Some("let") && position > index;
            if is_let_argument || raw.contains("$((") {
                arithmetic_updates(raw, names);
            }
        }
    }

    /// Does a test of a counter or the clock in the loop's condition end the
    /// loop by itself? The last and-or list decides: `while busy && [ $n -lt
    /// 9 ]` and `until ready || [ $n -ge 9 ]` end on the test, but `while
    /// busy || [ $n -lt 9 ]` goes on while `busy` holds, however far `n` runs.
    pub(super) fn condition_has_guard(&self, lp: &Loop, counters: &[&str]) -> bool {
        let Some((last, before)) = lp.condition.split_last() else {
            return false;
        };
        if !last
            .pipelines
            .iter()
            .any(|pipeline| self.pipeline_is_guard_test(pipeline, counters))
        {
            return self.list_has_guard_test(before, counters);
        }
        let ending = if lp.kind == LoopKind::Until {
            Connector::Or
        } else {
            Connector::And
        };
        let joined = |connector: Connector| last.connectors.contains(&connector);
        // Mixed connectors are read as a guard, as before.
        joined(ending) || !joined(other_connector(ending))
    }

    pub(super) fn list_has_guard_test(&self, list: &[AndOr], incremented: &[&str]) -> bool {
        pipelines_of(list).any(|pipeline| self.pipeline_is_guard_test(pipeline, incremented))
    }

    pub(super) fn pipeline_is_guard_test(&self, pipeline: &Pipeline, incremented: &[&str]) -> bool {
        pipeline.commands.iter().any(|command| match command {
            Command::Group(list) => self.list_has_guard_test(list, incremented),
            _ => self.is_guard_test(command, incremented),
        })
    }

    /// A test comparing elapsed time or a counter against a bound.
    fn is_guard_test(&self, command: &Command, incremented: &[&str]) -> bool {
        let (text, arithmetic) = match command {
            Command::Arithmetic(start, end) => (self.span(*start, *end), true),
            Command::Simple(simple) => {
                let name = self.command_name(simple);
                let arithmetic = match name.as_deref() {
                    Some("[" | "[[" | "test") => false,
                    Some("let") => true,
                    _ => return self.function_guard(simple, incremented).is_some(),
                };
                let first = self
                    .command_index(simple)
                    .map_or(0, |index| simple.words[index].start);
                let last = simple.words.last().map_or(first, |word| word.end);
                (self.span(first, last), arithmetic)
            }
            _ => return false,
        };
        let compares = if arithmetic {
            text.contains(['<', '>']) || text.contains("==") || text.contains("!=")
        } else {
            ["-gt", "-ge", "-lt", "-le", "-eq", "-ne", "=", "<", ">"]
                .iter()
                .any(|operator| text.contains(operator))
        };
        if !compares {
            return false;
        }
        if self.mentions_time(text) {
            return true;
        }
        if identifiers(text).any(|(_, name)| incremented.contains(&name)) {
            return true;
        }
        // `(( ++attempts > 5 ))` counts as it tests.
        let mut updated = Vec::new();
        if arithmetic {
            arithmetic_updates(text, &mut updated);
        }
        !updated.is_empty()
    }

    pub(super) fn mentions_time(&self, text: &str) -> bool {
        mentions_time(text, self.time_variables())
    }

    /// Looks for exits that a guard test controls, in `list` at `depth`
    /// loops below the loop being checked.
    pub(super) fn search_guards(
        &self,
        list: &[AndOr],
        depth: usize,
        incremented: &[&str],
        guards: &mut Guards,
    ) {
        for (position, and_or) in list.iter().enumerate() {
            // `if (( SECONDS < deadline )); then sleep 1; continue; fi; echo late; exit 1`:
            // the guard keeps the loop going, and falling through leaves it.
            if self.guard_continues(and_or, depth, incremented) {
                let rest = &list[position + 1..];
                if self.list_leaves(rest, depth) {
                    guards.record(self.list_announces(rest));
                }
            }
            // `guard && break`, `guard || { echo …; exit 1; }`
            let pipelines = &and_or.pipelines;
            if let Some(test) = pipelines
                .iter()
                .position(|pipeline| self.pipeline_is_guard_test(pipeline, incremented))
            {
                if let Some(exit) = (test + 1..pipelines.len())
                    .find(|&index| self.pipeline_leaves(&pipelines[index], depth))
                {
                    let announced = pipelines[test + 1..=exit]
                        .iter()
                        .any(|pipeline| self.pipeline_announces(pipeline))
                        || self.guard_function_announces(&pipelines[test..=test], incremented);
                    guards.record(announced);
                }
            }
            for command in commands_in(pipelines) {
                match command {
                    Command::If(branches) => {
                        let mut guarded = false;
                        for (condition, body) in &branches.branches {
                            let tests = self.list_has_guard_test(condition, incremented);
                            guarded |= tests;
                            if tests && self.list_leaves(body, depth) {
                                let announced = self.list_announces(body)
                                    || condition.iter().any(|and_or| {
                                        self.guard_function_announces(
                                            &and_or.pipelines,
                                            incremented,
                                        )
                                    });
                                guards.record(announced);
                            }
                            self.search_guards(condition, depth, incremented, guards);
                            self.search_guards(body, depth, incremented, guards);
                        }
                        if let Some(otherwise) = &branches.otherwise {
                            if guarded && self.list_leaves(otherwise, depth) {
                                guards.record(self.list_announces(otherwise));
                            }
                            self.search_guards(otherwise, depth, incremented, guards);
                        }
                    }
                    Command::Loop(lp) => {
                        self.search_guards(&lp.condition, depth + 1, incremented, guards);
                        self.search_guards(&lp.body, depth + 1, incremented, guards);
                    }
                    Command::Case(case) => {
                        for arm in &case.arms {
                            self.search_guards(arm, depth, incremented, guards);
                        }
                    }
                    Command::Group(body) => self.search_guards(body, depth, incremented, guards),
                    // `check_deadline`, a function that exits when time is up.
                    Command::Simple(simple) => {
                        if let Some(function) = self.function_guard(simple, incremented) {
                            if function.exits {
                                guards.record(function.announced);
                            }
                        }
                    }
                    Command::Arithmetic(..) | Command::Function(_) => {}
                }
            }
        }
    }

    /// When `simple` calls a function of this script whose body leaves
    /// (`return 1`, `exit`) on a guard test, what that exit does.
    pub(super) fn function_guard(
        &self,
        simple: &Simple,
        incremented: &[&str],
    ) -> Option<FunctionGuard> {
        if self.examining_function.get() {
            return None;
        }
        let name = self.command_name(simple)?;
        let (index, body) = self.function_named(&name)?;
        let Command::Group(list) = body else {
            return None;
        };
        // Many calls of one function from the same loop, or from loops with
        // the same counters, are judged once.
        let key = (index, incremented.join(" "));
        if let Some(answer) = self.function_answers.borrow().get(&key) {
            return *answer;
        }
        if !self.spend(1 + body_size(list)) {
            return None;
        }
        let answer = self.judge_function(list, incremented);
        self.function_answers.borrow_mut().insert(key, answer);
        answer
    }

    fn judge_function(&self, list: &[AndOr], incremented: &[&str]) -> Option<FunctionGuard> {
        self.examining_function.set(true);
        let mut own = Vec::new();
        self.list_increments(list, &mut own);
        let counters: Vec<&str> = incremented.iter().copied().chain(own).collect();
        let mut guards = Guards::default();
        self.search_guards(list, 0, &counters, &mut guards);
        let mut exits = false;
        if guards.found {
            self.exits_only.set(true);
            let mut leaving = Guards::default();
            self.search_guards(list, 0, &counters, &mut leaving);
            self.exits_only.set(false);
            exits = leaving.found;
        }
        // A predicate: its status is the test (`too_many() { [ "$n" -ge 5 ]; }`).
        let predicate = list.last().is_some_and(|and_or| {
            and_or.pipelines.len() == 1
                && self.pipeline_is_guard_test(&and_or.pipelines[0], &counters)
        });
        self.examining_function.set(false);
        (guards.found || predicate).then_some(FunctionGuard {
            announced: guards.announced,
            exits,
        })
    }

    /// `guard && continue`, or an `if guard` branch that continues.
    fn guard_continues(&self, and_or: &AndOr, depth: usize, incremented: &[&str]) -> bool {
        let pipelines = &and_or.pipelines;
        let chained = pipelines
            .iter()
            .position(|pipeline| self.pipeline_is_guard_test(pipeline, incremented))
            .is_some_and(|test| {
                pipelines[test + 1..].iter().any(|pipeline| {
                    pipeline
                        .commands
                        .iter()
                        .any(|command| self.command_jumps(command, depth, Jump::Continue))
                })
            });
        let branched = commands_in(pipelines).any(|command| match command {
            Command::If(branches) => branches.branches.iter().any(|(condition, body)| {
                self.list_has_guard_test(condition, incremented)
                    && self.list_jumps(body, depth, Jump::Continue)
            }),
            _ => false,
        });
        chained || branched
    }

    /// Every assignment in `list` and the functions it defines, as `(name, value)`.
    pub(super) fn collect_assignments(
        &self,
        list: &[AndOr],
        assignments: &mut Vec<(&'t str, &'t str)>,
    ) {
        self.for_each_assignment(list, true, &mut |assigned| {
            assignments.push((assigned.name, assigned.value));
        });
    }

    /// Calls `visit` on every assignment `list` runs, in nested lists and
    /// loops too, and in the bodies of functions it defines when
    /// `into_functions`: `name=value` before a command or as an argument of
    /// `local`/`declare`/`typeset`/`export`/`readonly`, `name+=value`, and
    /// `(( name = value ))` or `(( name op= value ))`.
    pub(super) fn for_each_assignment(
        &self,
        list: &[AndOr],
        into_functions: bool,
        visit: &mut dyn FnMut(Assignment<'t>),
    ) {
        for command in commands_of(list) {
            self.for_each_assignment_in(command, into_functions, visit);
        }
    }

    /// [`Self::for_each_assignment`] for one command.
    pub(super) fn for_each_assignment_in(
        &self,
        command: &Command,
        into_functions: bool,
        visit: &mut dyn FnMut(Assignment<'t>),
    ) {
        match command {
            Command::Simple(simple) => {
                let index = self.command_index(simple).unwrap_or(simple.words.len());
                let declares = matches!(
                    self.command_name(simple).as_deref(),
                    Some("local" | "declare" | "typeset" | "export" | "readonly")
                );
                for (position, word) in simple.words.iter().enumerate() {
                    if position < index || (declares && position > index) {
                        let raw = self.raw(word);
                        if let Some((name, value)) = assignment(raw) {
                            visit(Assignment {
                                name,
                                value,
                                compound: raw.as_bytes().get(name.len()) == Some(&b'+'),
                                arithmetic: false,
                            });
                        }
                    }
                }
            }
            Command::Arithmetic(start, end) => {
                // `(( deadline = SECONDS + 60 ))`, `(( n += 1 ))`
                let text = self.span(*start, *end);
                if let Some(equals) = text.find('=') {
                    let value = &text[equals + 1..];
                    let before = text[..equals].trim_end();
                    if !value.starts_with('=') {
                        if let Some((_, name)) = identifiers(before).last() {
                            visit(Assignment {
                                name,
                                value,
                                compound: before.ends_with([
                                    '+', '-', '*', '/', '%', '<', '>', '!', '&', '|', '^',
                                ]),
                                arithmetic: true,
                            });
                        }
                    }
                }
            }
            Command::Loop(inner) => {
                self.for_each_assignment(&inner.condition, into_functions, visit);
                self.for_each_assignment(&inner.body, into_functions, visit);
            }
            Command::If(_) | Command::Case(_) | Command::Group(_) => {
                for list in command.branch_lists() {
                    self.for_each_assignment(list, into_functions, visit);
                }
            }
            Command::Function(function) => {
                if let (true, Command::Group(list)) = (into_functions, &function.body) {
                    self.for_each_assignment(list, into_functions, visit);
                }
            }
        }
    }
}

/// `n=$((n + 1))` steps up, `left=$(( ${left} - 1 ))` down; `None` when
/// `value` does not step `name` by adding or subtracting.
fn step_direction(value: &str, name: &str) -> Option<bool> {
    let (start, _) = identifiers(value).find(|(_, other)| *other == name)?;
    let after = value[start + name.len()..].trim_start_matches(['}', ' ']);
    match after.chars().next()? {
        '+' => Some(true),
        '-' => Some(false),
        _ => None,
    }
}

/// The directions `(( n++ ))`, `(( --n ))`, `(( n += 2 ))` step their names.
fn arithmetic_directions<'a>(text: &'a str, directions: &mut Vec<(&'a str, bool)>) {
    for (start, name) in identifiers(text) {
        let before = text[..start].trim_end();
        let after = text[start + name.len()..].trim_start();
        if after.starts_with("++") || after.starts_with("+=") || before.ends_with("++") {
            directions.push((name, true));
        } else if after.starts_with("--") || after.starts_with("-=") || before.ends_with("--") {
            directions.push((name, false));
        }
    }
}

/// One assignment the script makes, as [`Analyzer::for_each_assignment`] finds it.
pub(super) struct Assignment<'t> {
    pub(super) name: &'t str,
    /// The text after `=`, as written.
    value: &'t str,
    /// `name+=value` or `(( name op= value ))`: builds on the old value.
    compound: bool,
    /// Inside `(( … ))`, where names are read without `$`.
    arithmetic: bool,
}

/// Does `text` read the clock: `SECONDS`, `date +%s`, or one of `variables`?
pub(super) fn mentions_time(text: &str, variables: &[&str]) -> bool {
    let mut saw_date = false;
    for (_, name) in identifiers(text) {
        match name {
            "SECONDS" | "EPOCHSECONDS" | "EPOCHREALTIME" => return true,
            "date" => saw_date = true,
            _ if variables.contains(&name) => return true,
            _ => {}
        }
    }
    saw_date && text.contains("%s")
}

/// `&&` for `||` and the reverse.
fn other_connector(connector: Connector) -> Connector {
    match connector {
        Connector::And => Connector::Or,
        Connector::Or => Connector::And,
    }
}

/// Names changed by `n++`, `++n`, `n--`, `n+=1`, `n-=1` or `n = n + 1` in arithmetic text.
fn arithmetic_updates<'a>(text: &'a str, names: &mut Vec<&'a str>) {
    for (start, name) in identifiers(text) {
        let before = text[..start].trim_end();
        let after = text[start + name.len()..].trim_start();
        let updated = after.starts_with("++")
            || after.starts_with("--")
            || after.starts_with("+=")
            || after.starts_with("-=")
            || before.ends_with("++")
            || before.ends_with("--")
            || (after.starts_with('=') && !after.starts_with("==") && {
                let expression = after[1..].split([',', ';']).next().unwrap_or("");
                identifiers(expression).any(|(_, other)| other == name)
            });
        if updated && !names.contains(&name) {
            names.push(name);
        }
    }
}
