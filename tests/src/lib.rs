//! End-to-end test support: start the real server and talk to it.
