//! The page every path of the console serves: navigation, a place for the
//! view, and the script that loads the view with the reader's token, keeps
//! it live and reconnects. It holds no data itself: every figure comes with
//! a token.

use maud::{DOCTYPE, Markup, html};

/// The console's views, as the navigation lists them.
const VIEWS: [(&str, &str); 4] = [
    ("/", "Countries"),
    ("/agreements", "Agreements"),
    ("/log", "Log"),
    ("/operations", "Operations"),
];

/// The page.
pub(crate) fn shell() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Accord console" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#view" { "Skip to the content" }
                header {
                    p class="brand" { "Accord" }
                    nav aria-label="Views" {
                        ul {
                            @for (path, label) in VIEWS {
                                li { a href=(path) { (label) } }
                            }
                        }
                    }
                    p id="connection" role="status" aria-live="polite" {}
                }
                form id="login" hidden {
                    h1 { "Sign in" }
                    p { "This server asks for a token. It is kept for this tab only, and sent with each request." }
                    label for="token" { "Token" }
                    input id="token" type="password" autocomplete="off" required;
                    button type="submit" { "Open the console" }
                    p id="login-error" role="alert" {}
                }
                main id="view" tabindex="-1" {
                    p { "Loading…" }
                }
                noscript { p { "The console needs JavaScript: it sends your token with each request." } }
            }
        }
    }
}
