//! Projects: groups of migrations.

use godwit_codes::Code;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DomainError, Store, StoreFailure, failed, new_id, now_ms, plausible_id};

/// A project: a group of migrations.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Job options every migration of the project takes unless it gives its own:
    /// `targetProfile`, `filters`, `sanitize`, `syncDeletes`, `maxDelete`, `bwlimit`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

fn project_of(r: &AnyRow) -> Result<Project, sqlx::Error> {
    Ok(Project {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        settings: r
            .try_get::<Option<String>, _>("settings")?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    })
}

impl Store {
    pub async fn create_project(
        &self,
        name: &str,
        description: &str,
    ) -> Result<Project, DomainError> {
        let now = now_ms();
        let p = Project {
            id: new_id(),
            name: name.to_string(),
            description: description.to_string(),
            created_ms: now,
            updated_ms: now,
            settings: Default::default(),
        };
        sqlx::query(
            "INSERT INTO projects (id, name, description, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.created_ms)
        .bind(p.updated_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => {
                DomainError::new(Code::ERR_PROJECT_NAME_ALREADY_USED, &[("name", name)])
            }
            StoreFailure::Failed(r) => failed(Code::DB_ERR_CREATE_DOC, "project", "", &r),
        })?;
        Ok(p)
    }

    pub async fn list_projects(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<Project>), DomainError> {
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_GET_DOCS, "projects", "", &e.to_string());
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM projects")
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?
            .try_get(0)
            .map_err(fail)?;
        let rows = sqlx::query(
            "SELECT id, name, description, created_ms, updated_ms, settings FROM projects \
             ORDER BY created_ms, id LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        let projects = rows
            .iter()
            .map(project_of)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok((count, projects))
    }

    pub async fn get_project(&self, id: &str) -> Result<Project, DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("project", id));
        }
        let row = sqlx::query(
            "SELECT id, name, description, created_ms, updated_ms, settings FROM projects \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| failed(Code::DB_ERR_GET_DOC, "project", id, &e.to_string()))?;
        match row {
            Some(r) => project_of(&r)
                .map_err(|e| failed(Code::DB_ERR_GET_DOC, "project", id, &e.to_string())),
            None => Err(DomainError::not_found("project", id)),
        }
    }

    pub async fn update_project(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        settings: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Project, DomainError> {
        let mut p = self.get_project(id).await?;
        if let Some(n) = name {
            p.name = n.to_string();
        }
        if let Some(d) = description {
            p.description = d.to_string();
        }
        if let Some(s) = settings {
            p.settings = s.clone();
        }
        p.updated_ms = now_ms();
        let settings_text = serde_json::to_string(&p.settings).unwrap_or_else(|_| "{}".into());
        sqlx::query(
            "UPDATE projects SET name = $1, description = $2, updated_ms = $3, settings = $4 \
             WHERE id = $5",
        )
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.updated_ms)
        .bind(&settings_text)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreFailure::from(e) {
            StoreFailure::Duplicate => {
                DomainError::new(Code::ERR_PROJECT_NAME_ALREADY_USED, &[("name", &p.name)])
            }
            StoreFailure::Failed(r) => failed(Code::DB_ERR_UPDATE_DOC, "project", id, &r),
        })?;
        Ok(p)
    }

    pub async fn delete_project(&self, id: &str) -> Result<(), DomainError> {
        if !plausible_id(id) {
            return Err(DomainError::not_found("project", id));
        }
        let fail = |e: sqlx::Error| failed(Code::DB_ERR_DELETE_DOC, "project", id, &e.to_string());
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query("DELETE FROM project_runs WHERE project_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        if done.rows_affected() == 0 {
            return Err(DomainError::not_found("project", id));
        }
        Ok(())
    }
}
