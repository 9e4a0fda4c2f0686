/* yaml.c - reads Kubernetes manifests (JSON, or YAML with one or more documents) as cJSON. */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "standin.h"
#include "topowire/error.h"

/* A plain scalar means what YAML 1.1 core schema says; a quoted one is a string. */
static cJSON *scalar(const yaml_node_t *node)
{
    const char *v = (const char *)node->data.scalar.value;
    size_t n = node->data.scalar.length;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return cJSON_CreateString(v);
    if (n == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0)
        return cJSON_CreateNull();
    if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0)
        return cJSON_CreateTrue();
    if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0)
        return cJSON_CreateFalse();
    char *end;
    double d = strtod(v, &end);
    if (end == v + n && strspn(v, "+-0123456789.eE") == n)
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(v);
}

static cJSON *convert(yaml_document_t *doc, yaml_node_t *node, int depth)
{
    if (node == NULL || depth > 64)
        return NULL;
    if (node->type == YAML_SCALAR_NODE)
        return scalar(node);
    if (node->type == YAML_SEQUENCE_NODE) {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             a && it < node->data.sequence.items.top; it++) {
            cJSON *v = convert(doc, yaml_document_get_node(doc, *it), depth + 1);
            if (v == NULL) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, v);
        }
        return a;
    }
    if (node->type == YAML_MAPPING_NODE) {
        cJSON *o = cJSON_CreateObject();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             o && p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            cJSON *v = convert(doc, yaml_document_get_node(doc, p->value), depth + 1);
            if (k == NULL || k->type != YAML_SCALAR_NODE || v == NULL) {
                cJSON_Delete(v);
                cJSON_Delete(o);
                return NULL;
            }
            cJSON_AddItemToObject(o, (const char *)k->data.scalar.value, v);
        }
        return o;
    }
    return NULL;
}

cJSON *st_load_documents(const char *path, char *err)
{
    size_t len = 0;
    char *text = st_read_file(path, ST_FILE_MAX, &len);
    if (text == NULL) {
        tw_seterr(err, TW_EIO, "cannot read %s", path);
        return NULL;
    }
    cJSON *docs = cJSON_CreateArray();
    cJSON *json = cJSON_Parse(text);
    if (json) {
        cJSON_AddItemToArray(docs, json);
        free(text);
        return docs;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            tw_seterr(err, TW_EPARSE, "%s is neither JSON nor YAML (line %zu)", path,
                      parser.problem_mark.line + 1);
            cJSON_Delete(docs);
            docs = NULL;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL) {
            yaml_document_delete(&doc);
            break;
        }
        cJSON *v = convert(&doc, root, 0);
        yaml_document_delete(&doc);
        if (v == NULL) {
            tw_seterr(err, TW_EPARSE, "%s has a YAML document that does not map to JSON", path);
            cJSON_Delete(docs);
            docs = NULL;
            break;
        }
        if (cJSON_IsNull(v))
            cJSON_Delete(v); /* an empty document between two "---" */
        else
            cJSON_AddItemToArray(docs, v);
    }
    yaml_parser_delete(&parser);
    free(text);
    return docs;
}
