//! Secrets: passwords given in the file or, better, as a reference to an environment
//! variable. Never printed.

use crate::environment::Environment;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::fmt;

/// A password or token: `"literal"` in the file (discouraged) or `{ env = "VAR" }`, read from
/// the environment when the config is loaded.
///
/// `Debug` and `Display` print `***`; only [`Secret::expose`] gives the value, for the client
/// that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    from: SecretFrom,
    value: String,
}

#[derive(Clone, PartialEq, Eq)]
enum SecretFrom {
    Literal,
    Env(String),
}

impl Secret {
    /// A secret with a known value (for callers building settings in code).
    pub fn literal(value: impl Into<String>) -> Self {
        Secret {
            from: SecretFrom::Literal,
            value: value.into(),
        }
    }

    /// The secret's value. Hand it to a client; never log or print it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The environment variable the secret is read from, if it is a reference.
    pub fn env_var(&self) -> Option<&str> {
        match &self.from {
            SecretFrom::Env(var) => Some(var),
            SecretFrom::Literal => None,
        }
    }

    /// Reads an environment reference from `env`. The error (without the value, which is
    /// unknown anyway) says which variable to set.
    pub(crate) fn resolve(&mut self, env: &Environment) -> Result<(), String> {
        if let SecretFrom::Env(var) = &self.from {
            match env.get(var) {
                Some(value) => self.value = value.to_owned(),
                None => {
                    return Err(format!(
                        "the environment variable `{var}` it refers to is not set; export \
                         {var}=… before starting strata, or change the reference"
                    ))
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Said for any value of the wrong shape. It never echoes the value: it may be a password.
const SECRET_SHAPE: &str = "a secret must be a string or `{ env = \"VARIABLE\" }` (the value is \
                            not shown because it may be a password)";

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(SECRET_SHAPE)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::literal(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
                let mut var: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "env" {
                        return Err(de::Error::custom(format!(
                            "unknown key `{key}` in a secret; the only key is `env`: \
                             `{{ env = \"VARIABLE\" }}`"
                        )));
                    }
                    let name: String = map.next_value().map_err(|_| {
                        de::Error::custom("`env` must name an environment variable, as a string")
                    })?;
                    if name.trim().is_empty() {
                        return Err(de::Error::custom(
                            "`env` is empty; name the environment variable that holds the secret",
                        ));
                    }
                    var = Some(name);
                }
                let var = var.ok_or_else(|| {
                    de::Error::custom("missing `env`; write `{ env = \"VARIABLE\" }`")
                })?;
                Ok(Secret {
                    from: SecretFrom::Env(var),
                    value: String::new(),
                })
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(de::Error::custom(SECRET_SHAPE))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::literal("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn env_references_resolve_or_name_the_variable() {
        let mut s: Secret = toml::from_str::<toml::Value>("env = \"STRATA_T_PW\"")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(s.env_var(), Some("STRATA_T_PW"));
        let err = s.resolve(&Environment::default()).unwrap_err();
        assert!(err.contains("`STRATA_T_PW`"), "{err}");
        let env = Environment::from_iter([("STRATA_T_PW".to_owned(), "pw".to_owned())]);
        s.resolve(&env).unwrap();
        assert_eq!(s.expose(), "pw");
    }

    #[test]
    fn wrong_shapes_do_not_echo_the_value() {
        let err = toml::Value::Integer(987_654)
            .try_into::<Secret>()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("987654"), "{err}");
        assert!(err.contains("env = "), "{err}");
    }
}
