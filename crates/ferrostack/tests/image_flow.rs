//! The image service through its HTTP API: upload and download round trip,
//! status transitions, inspection refusals, JSON-patch edits, sharing, and
//! bad input answered in Glance's format with nothing half-made.

use ferro_test_support::{tiny_qcow2, Backend, RawBody, TestCloud};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn upload_download_and_refusals() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let base = format!("{}/v2/images", tc.cloud.image_url);
    let data = tiny_qcow2();
    let id = tc.upload_image(&admin, "t", "qcow2", data.clone()).await;
    let img = tc
        .send(Method::GET, &format!("{base}/{id}"), Some(&admin), None)
        .await;
    assert_eq!(img.json["status"], "active");
    assert_eq!(img.json["size"], data.len());
    assert_eq!(img.json["virtual_size"], 1u64 << 30);
    assert_eq!(img.json["os_hash_algo"], "sha512");
    let back = tc
        .http
        .get(format!("{base}/{id}/file"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::OK);
    assert!(back.headers().contains_key("content-md5"));
    assert_eq!(
        back.bytes().await.unwrap().to_vec(),
        data,
        "identical bytes"
    );
    // A second upload to an active image is a conflict.
    let again = tc
        .send(
            Method::PUT,
            &format!("{base}/{id}/file"),
            Some(&admin),
            Some(RawBody::Bytes(data.clone(), "application/octet-stream")),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // Refused content: the image returns to queued with no data stored.
    let mk = |fmt: &str| json!({"name": "bad", "disk_format": fmt, "container_format": "bare"});
    for (fmt, bytes, why) in [
        (
            "qcow2",
            b"not a qcow2 at all".repeat(100),
            "not in qcow2 format",
        ),
        ("raw", data.clone(), "qcow2 but its disk_format says raw"),
        ("iso", vec![0u8; 40_000], "not an ISO"),
    ] {
        let c = tc
            .send(
                Method::POST,
                &base,
                Some(&admin),
                Some(RawBody::Json(mk(fmt))),
            )
            .await;
        let bad = c.json["id"].as_str().unwrap().to_owned();
        let r = tc
            .send(
                Method::PUT,
                &format!("{base}/{bad}/file"),
                Some(&admin),
                Some(RawBody::Bytes(bytes, "application/octet-stream")),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{fmt}");
        assert!(
            r.json["raw"].as_str().unwrap_or("").contains(why),
            "{fmt}: {}",
            r.json
        );
        let after = tc
            .send(Method::GET, &format!("{base}/{bad}"), Some(&admin), None)
            .await;
        assert_eq!(after.json["status"], "queued");
        assert!(after.json["size"].is_null());
    }
    let mut backing = data.clone();
    backing[8..16].copy_from_slice(&512u64.to_be_bytes());
    let c = tc
        .send(
            Method::POST,
            &base,
            Some(&admin),
            Some(RawBody::Json(mk("qcow2"))),
        )
        .await;
    let bad = c.json["id"].as_str().unwrap().to_owned();
    let r = tc
        .send(
            Method::PUT,
            &format!("{base}/{bad}/file"),
            Some(&admin),
            Some(RawBody::Bytes(backing, "application/octet-stream")),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let files = std::fs::read_dir(tc.cloud.openrc.parent().unwrap().join("images"))
        .unwrap()
        .count();
    assert_eq!(files, 1, "only the good image has data on disk");
    tc.stop().await;
}

#[tokio::test]
async fn patch_sharing_and_bad_input() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let base = format!("{}/v2/images", tc.cloud.image_url);
    let id = tc.upload_image(&admin, "t", "qcow2", tiny_qcow2()).await;
    let patch = |body: &'static str, ct: &'static str| {
        let (tc, admin, url) = (&tc, admin.clone(), format!("{base}/{id}"));
        async move {
            tc.http
                .patch(url)
                .header("X-Auth-Token", admin)
                .header("Content-Type", ct)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let jp = "application/openstack-images-v2.1-json-patch";
    assert_eq!(patch(r#"[{"op":"replace","path":"/name","value":"n2"},{"op":"add","path":"/os_distro","value":"tiny"}]"#, jp).await, StatusCode::OK);
    assert_eq!(
        patch(r#"[{"op":"remove","path":"/os_distro"}]"#, jp).await,
        StatusCode::OK
    );
    // the older v2.0 media type names the operation by its key
    let jp0 = "application/openstack-images-v2.0-json-patch";
    assert_eq!(
        patch(
            r#"[{"replace":"/name","value":"n3"},{"add":"/old_style","value":"yes"}]"#,
            jp0
        )
        .await,
        StatusCode::OK
    );
    let shown = tc
        .send(Method::GET, &format!("{base}/{id}"), Some(&admin), None)
        .await;
    assert_eq!(shown.json["name"], "n3");
    assert_eq!(shown.json["old_style"], "yes");
    assert_eq!(
        patch(
            r#"[{"op":"replace","path":"/name","value":"x"}]"#,
            "application/json"
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        patch(
            r#"[{"op":"replace","path":"/status","value":"active"}]"#,
            jp
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        patch(r#"[{"op":"replace","path":"/min_ram","value":-5}]"#, jp).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        patch(r#"[{"op":"add","path":"/prop","value":5}]"#, jp).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        patch(r#"[{"op":"explode","path":"/name"}]"#, jp).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        patch(r#"{"op":"replace"}"#, jp).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        patch(r#"[{"op":"remove","path":"/nothing"}]"#, jp).await,
        StatusCode::CONFLICT
    );
    let img = tc
        .send(Method::GET, &format!("{base}/{id}"), Some(&admin), None)
        .await;
    assert_eq!(img.json["name"], "n3");
    assert!(img.json.get("os_distro").is_none());

    let before = ferro_test_support::snapshot(&tc.cloud).await;
    for (body, want) in [
        (
            json!({"name": "x", "disk_format": "vmdk", "container_format": "bare"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "disk_format": "qcow2", "container_format": "box"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "visibility": "everyone"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"name": 5}), StatusCode::BAD_REQUEST),
        (json!({"name": "x".repeat(300)}), StatusCode::BAD_REQUEST),
        (
            json!({"name": "x", "min_disk": "lots"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "id": "not-a-uuid"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"name": "x", "id": id}), StatusCode::CONFLICT),
        (json!({"name": "x", "size": 10}), StatusCode::FORBIDDEN),
        (json!(["not", "an", "object"]), StatusCode::BAD_REQUEST),
    ] {
        let r = tc
            .send(
                Method::POST,
                &base,
                Some(&admin),
                Some(RawBody::Json(body.clone())),
            )
            .await;
        assert_eq!(r.status, want, "{body}: {}", r.json);
        assert!(
            r.json["raw"].as_str().unwrap_or("").contains("<h1>"),
            "Glance's HTML fault: {}",
            r.json
        );
    }
    let r = tc
        .send(
            Method::GET,
            &format!("{base}?visibility=galactic"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = tc
        .send(
            Method::GET,
            &format!("{base}?limit=many"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let after = ferro_test_support::snapshot(&tc.cloud).await;
    let changed: Vec<_> = after
        .iter()
        .filter(|l| !before.contains(l) && !l.starts_with("hosts:"))
        .collect();
    assert!(changed.is_empty(), "the database changed: {changed:#?}");

    // Pagination: 30 images come in pages of 25 with a next link.
    for i in 0..30 {
        let r = tc
            .send(
                Method::POST,
                &base,
                Some(&admin),
                Some(RawBody::Json(json!({"name": format!("p{i}")}))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let page = tc.send(Method::GET, &base, Some(&admin), None).await;
    assert_eq!(page.json["images"].as_array().unwrap().len(), 25);
    let next = page.json["next"].as_str().unwrap().to_owned();
    let rest = tc
        .send(
            Method::GET,
            &format!("{}{next}", tc.cloud.image_url),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(rest.json["images"].as_array().unwrap().len(), 6);
    assert!(rest.json.get("next").is_none());
    tc.stop().await;
}

#[tokio::test]
async fn the_owner_deactivates_its_own_image() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let (_, owner) = tc.project_user(&admin, "imgowner", "member").await;
    let (_, other) = tc.project_user(&admin, "imgother", "member").await;
    let (_, reader) = tc.project_user(&admin, "imgreader", "reader").await;
    let url = format!("{}/v2/images", tc.cloud.image_url);
    let body = json!({"name": "mine", "disk_format": "qcow2", "container_format": "bare"});
    let made = tc
        .send(Method::POST, &url, Some(&owner), Some(RawBody::Json(body)))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    let id = made.json["id"].as_str().unwrap().to_owned();
    let data = RawBody::Bytes(tiny_qcow2(), "application/octet-stream");
    let put = tc
        .send(
            Method::PUT,
            &format!("{url}/{id}/file"),
            Some(&owner),
            Some(data),
        )
        .await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    let base = format!("{url}/{id}");
    // No image here comes from an import: it has no tasks.
    let tasks = tc
        .send(Method::GET, &format!("{base}/tasks"), Some(&owner), None)
        .await;
    assert_eq!(tasks.status, StatusCode::OK);
    assert_eq!(tasks.json, json!({"tasks": []}));
    let hidden = tc
        .send(Method::GET, &format!("{base}/tasks"), Some(&other), None)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let act = |token: &str, what: &str| {
        let (url, token) = (format!("{base}/actions/{what}"), token.to_owned());
        let tc = &tc;
        async move { tc.send(Method::POST, &url, Some(&token), None).await }
    };
    assert_eq!(
        act(&other, "deactivate").await.status,
        StatusCode::NOT_FOUND,
        "not visible to another project"
    );
    assert_eq!(
        act(&reader, "deactivate").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        act(&owner, "deactivate").await.status,
        StatusCode::NO_CONTENT
    );
    let shown = tc.send(Method::GET, &base, Some(&owner), None).await;
    assert_eq!(shown.json["status"], "deactivated");
    assert_eq!(
        act(&owner, "reactivate").await.status,
        StatusCode::NO_CONTENT
    );
    let shown = tc.send(Method::GET, &base, Some(&owner), None).await;
    assert_eq!(shown.json["status"], "active");
}

#[tokio::test]
async fn lists_sort_as_glance() {
    let tc = TestCloud::start(Backend::Sqlite).await;
    let admin = tc.admin_token().await;
    let url = format!("{}/v2/images", tc.cloud.image_url);
    for name in ["b", "c", "a"] {
        let body = json!({"name": name, "disk_format": "raw", "container_format": "bare"});
        let r = tc
            .send(Method::POST, &url, Some(&admin), Some(RawBody::Json(body)))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let names = |q: &'static str| {
        let (tc, url, admin) = (&tc, url.clone(), admin.clone());
        async move {
            let r = tc
                .send(Method::GET, &format!("{url}?{q}"), Some(&admin), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.json);
            r.json["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("").await, ["a", "c", "b"], "newest first");
    assert_eq!(names("sort_key=name&sort_dir=asc").await, ["a", "b", "c"]);
    assert_eq!(
        names("sort_key=created_at&sort_dir=asc").await,
        ["b", "c", "a"]
    );
    assert_eq!(names("sort=name:desc").await, ["c", "b", "a"]);
    assert_eq!(
        names("sort_key=name&sort_dir=asc&limit=2").await,
        ["a", "b"]
    );
    for bad in ["sort_key=nope", "sort_dir=up", "sort=name&sort_key=name"] {
        let r = tc
            .send(Method::GET, &format!("{url}?{bad}"), Some(&admin), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
