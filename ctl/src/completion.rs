//! `completion bash|zsh|fish`: a shell completion script written from the
//! command line's own definition (clap's [`clap::Command`]: subcommands,
//! flags, descriptions) and the served kinds ([`capstan_proto::KINDS`]);
//! object names after `KIND` come from the cluster at completion time
//! (`capctl get KIND -o jsonpath=…`), as are pod names after `logs` and
//! `deployment/NAME` after `rollout SUBCOMMAND`. Source it, e.g.
//! `source <(capctl completion bash)`.

use clap::{CommandFactory as _, ValueEnum};

use crate::{Cli, Error};

/// The shells a script can be written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash 4+ (`complete -F`).
    Bash,
    /// zsh, through `bashcompinit`.
    Zsh,
    /// fish.
    Fish,
}

/// Commands whose first argument is a kind.
const KIND_COMMANDS: &[&str] = &[
    "get", "describe", "delete", "label", "annotate", "scale", "explain",
];

fn kind_words() -> String {
    let mut words: Vec<&str> = Vec::new();
    for k in capstan_proto::KINDS {
        words.push(k.plural);
        words.extend(k.short_names);
    }
    words.join(" ")
}

fn flags(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        if let Some(l) = arg.get_long() {
            out.push(format!("--{l}"));
        }
        if let Some(s) = arg.get_short() {
            out.push(format!("-{s}"));
        }
    }
    out
}

fn bash() -> String {
    let cli = Cli::command();
    let global = flags(&cli).join(" ");
    let subs: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    let mut cases = String::new();
    for sub in cli.get_subcommands() {
        let mut words = flags(sub);
        words.extend(sub.get_subcommands().map(|c| c.get_name().to_owned()));
        cases.push_str(&format!(
            "        {}) words=\"{} {global}\" ;;\n",
            sub.get_name(),
            words.join(" ")
        ));
    }
    format!(
        r#"# capctl completion for bash. Load with: source <(capctl completion bash)
_capctl() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local cmd="" kind="" npos=0 i w words
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in
            -n|--namespace|--kubeconfig|--context|-f|--filename|-o|--output|-l|--selector|--field-selector) ((i++)) ;;
            -*) ;;
            *) if [[ -z "$cmd" ]]; then cmd="$w"; else ((npos++)); [[ $npos -eq 1 ]] && kind="$w"; fi ;;
        esac
    done
    case "$prev" in
        -f|--filename|--kubeconfig|--from-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -o|--output) COMPREPLY=($(compgen -W "yaml json name wide jsonpath=" -- "$cur")); return ;;
    esac
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "{subs} {global}" -- "$cur")); return
    fi
    case "$cmd" in
{cases}        *) words="{global}" ;;
    esac
    case "$cmd" in
        logs)
            if [[ $npos -eq 0 && "$cur" != -* ]]; then
                COMPREPLY=($(compgen -W "$(capctl get pods -o 'jsonpath={{.items[*].metadata.name}}' 2>/dev/null)" -- "$cur")); return
            fi ;;
        rollout)
            if [[ $npos -eq 1 && "$cur" != -* ]]; then
                COMPREPLY=($(compgen -W "$(capctl get deployments -o 'jsonpath={{range .items[*]}}deployment/{{.metadata.name}} {{end}}' 2>/dev/null)" -- "$cur")); return
            fi ;;
    esac
    case " {kind_commands} " in
        *" $cmd "*)
            if [[ $npos -eq 0 && "$cur" != -* ]]; then
                COMPREPLY=($(compgen -W "{kinds}" -- "$cur")); return
            fi
            if [[ $npos -ge 1 && "$cur" != -* && "$kind" != */* && "$cmd" != explain ]]; then
                local names
                names=$(capctl get "$kind" -o 'jsonpath={{.items[*].metadata.name}}' 2>/dev/null)
                COMPREPLY=($(compgen -W "$names" -- "$cur")); return
            fi ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _capctl capctl
"#,
        subs = subs.join(" "),
        kind_commands = KIND_COMMANDS.join(" "),
        kinds = kind_words(),
    )
}

fn fish() -> String {
    let cli = Cli::command();
    let mut out = String::from(
        "# capctl completion for fish. Load with: capctl completion fish | source\ncomplete -c capctl -f\n",
    );
    let about = |c: &clap::Command| {
        c.get_about()
            .map(|a| a.to_string().replace('\'', "\\'"))
            .unwrap_or_default()
    };
    for sub in cli.get_subcommands() {
        out.push_str(&format!(
            "complete -c capctl -n '__fish_use_subcommand' -a '{}' -d '{}'\n",
            sub.get_name(),
            about(sub)
        ));
        for arg in sub.get_arguments().filter(|a| a.get_long().is_some()) {
            out.push_str(&format!(
                "complete -c capctl -n '__fish_seen_subcommand_from {}' -l '{}'{}\n",
                sub.get_name(),
                arg.get_long().unwrap_or_default(),
                arg.get_short()
                    .map(|s| format!(" -s '{s}'"))
                    .unwrap_or_default()
            ));
        }
        for nested in sub.get_subcommands() {
            out.push_str(&format!(
                "complete -c capctl -n '__fish_seen_subcommand_from {}' -a '{}' -d '{}'\n",
                sub.get_name(),
                nested.get_name(),
                about(nested)
            ));
        }
    }
    for arg in cli.get_arguments().filter(|a| a.get_long().is_some()) {
        out.push_str(&format!(
            "complete -c capctl -l '{}'{}\n",
            arg.get_long().unwrap_or_default(),
            arg.get_short()
                .map(|s| format!(" -s '{s}'"))
                .unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "complete -c capctl -n '__fish_seen_subcommand_from {}' -a '{}'\n",
        KIND_COMMANDS.join(" "),
        kind_words()
    ));
    out.push_str("complete -c capctl -l filename -s f -r -F\n");
    out
}

/// The script for `shell`.
pub fn script(shell: Shell) -> String {
    match shell {
        Shell::Bash => bash(),
        Shell::Zsh => format!(
            "# capctl completion for zsh (through bashcompinit). Load with: source <(capctl completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n{}",
            bash()
        ),
        Shell::Fish => fish(),
    }
}

/// Runs `capctl completion SHELL`.
pub fn completion(shell: Shell) -> Result<(), Error> {
    print!("{}", script(shell));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_commands_and_kinds() {
        let bash = script(Shell::Bash);
        assert!(bash.contains("complete -o default -F _capctl capctl"));
        assert!(bash.contains("apply") && bash.contains("cluster"));
        assert!(bash.contains("deployments") && bash.contains("deploy"));
        assert!(script(Shell::Zsh).contains("bashcompinit"));
        let fish = script(Shell::Fish);
        assert!(fish.contains("-a 'get'") && fish.contains("-l 'selector' -s 'l'"));
    }
}
