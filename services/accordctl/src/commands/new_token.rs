//! `accordctl new-token NAME ROLES`: a random token, shown once, and the line
//! for the server's token file (which holds only its hash).

use std::process::ExitCode;

use accord_server::auth::{TokenTable, new_token};

pub(crate) fn run(name: &str, roles: &str) -> ExitCode {
    let token = new_token();
    let line = TokenTable::line_for(name, roles, &token);
    if let Err(error) = TokenTable::parse(&line) {
        eprintln!("accordctl: {error}");
        return ExitCode::from(2);
    }
    println!("token (give it to the client; it is not stored anywhere): {token}");
    println!("token file line: {line}");
    ExitCode::SUCCESS
}
