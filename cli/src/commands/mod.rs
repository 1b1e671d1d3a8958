pub mod infra;
